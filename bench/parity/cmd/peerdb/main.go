// Command peerdb turns directories of OSV records into the offline
// databases of mamori's peers: the Go vulnerability database layout that
// govulncheck reads (-db file:///DIR) and the per-ecosystem zip archives
// that osv-scanner reads (--offline-vulnerabilities --local-db-path DIR).
//
// Usage:
//
//	peerdb [-govulndb DIR] [-osv-scanner DIR] OSV_DIR...
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/mamorisec/mamori/bench/parity"
)

func main() {
	govulndb := flag.String("govulndb", "", "write the Go vulnerability database (v1 layout) to this directory")
	osvScanner := flag.String("osv-scanner", "", "write osv-scanner's offline databases to this directory")
	flag.Usage = func() {
		fmt.Fprintln(flag.CommandLine.Output(), "usage: peerdb [-govulndb DIR] [-osv-scanner DIR] OSV_DIR...")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() == 0 || (*govulndb == "" && *osvScanner == "") {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*govulndb, *osvScanner, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "peerdb:", err)
		os.Exit(1)
	}
}

func run(govulndb, osvScanner string, dirs []string) error {
	var recs []parity.Record
	for _, d := range dirs {
		r, err := parity.ReadRecords(d)
		if err != nil {
			return err
		}
		recs = append(recs, r...)
	}
	if govulndb != "" {
		if err := parity.WriteGoVulnDB(govulndb, recs); err != nil {
			return fmt.Errorf("writing the Go vulnerability database to %s: %w", govulndb, err)
		}
	}
	if osvScanner != "" {
		rejected, err := parity.WriteOSVScannerDB(osvScanner, recs)
		if err != nil {
			return fmt.Errorf("writing osv-scanner's databases to %s: %w", osvScanner, err)
		}
		for _, id := range rejected {
			fmt.Fprintf(os.Stderr, "peerdb: warning: osv-scanner will skip %s: its OSV schema rejects the record\n", id)
		}
	}
	return nil
}
