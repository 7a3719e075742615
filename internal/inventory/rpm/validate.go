package rpm

import (
	"bytes"
	"database/sql"
	"encoding/binary"
	"fmt"
	"io"
	"os"
)

// maxHeader is rpm's limit on one package header (headerMaxbytes).
const maxHeader = 256 << 20

var sqliteMagic = []byte("SQLite format 3\x00")

const (
	ndbMagic      = 'R' | 'p'<<8 | 'm'<<16 | 'P'<<24
	ndbSlotMagic  = 'S' | 'l'<<8 | 'o'<<16 | 't'<<24
	ndbBlobMagic  = 'B' | 'l'<<8 | 'b'<<16 | 'S'<<24
	bdbHashMagic  = 0x00061561
	bdbHashMagicS = 0x61150600 // byte-swapped (big-endian file)
)

// validate checks that go-rpmdb can read f without reading outside the file,
// looping or allocating more than the file's size; see the package
// documentation.
func validate(f *os.File) error {
	st, err := f.Stat()
	if err != nil {
		return err
	}
	size := st.Size()
	head := make([]byte, 512)
	n, err := f.ReadAt(head, 0)
	if err != nil && err != io.EOF {
		return err
	}
	head = head[:n]
	switch {
	case bytes.HasPrefix(head, sqliteMagic):
		return validateSQLite(f.Name())
	case len(head) >= 4 && binary.LittleEndian.Uint32(head) == ndbMagic:
		return validateNDB(f, size)
	case len(head) >= 16 && (binary.LittleEndian.Uint32(head[12:]) == bdbHashMagic || binary.LittleEndian.Uint32(head[12:]) == bdbHashMagicS):
		return validateBDB(f, size)
	}
	return fmt.Errorf("not an rpm database: neither SQLite, NDB nor Berkeley DB hash (%d bytes)", size)
}

func corrupt(format string, args ...any) error {
	return fmt.Errorf("corrupt rpm database: "+format, args...)
}

// checkHeader checks the start of a package header blob of length n: the
// index entry count must fit in the blob, as go-rpmdb allocates it before
// any other check.
func checkHeader(start []byte, n int64, where string) error {
	if n > maxHeader {
		return corrupt("%s: package header of %d bytes is larger than rpm's %d MiB limit", where, n, maxHeader>>20)
	}
	if len(start) < 8 {
		return nil // go-rpmdb reports short headers itself
	}
	il := int64(int32(binary.BigEndian.Uint32(start)))
	if il >= 1 && 8+16*il > n {
		return corrupt("%s: package header claims %d index entries, more than its %d bytes hold", where, il, n)
	}
	return nil
}

func validateSQLite(name string) error {
	db, err := sql.Open("sqlite", name)
	if err != nil {
		return fmt.Errorf("opening SQLite rpm database: %w", err)
	}
	defer db.Close()
	rows, err := db.Query("SELECT hnum, length(blob), substr(blob, 1, 8) FROM Packages")
	if err != nil {
		return corrupt("reading the Packages table: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			hnum  int64
			n     int64
			start []byte
		)
		if err := rows.Scan(&hnum, &n, &start); err != nil {
			return corrupt("reading the Packages table: %w", err)
		}
		if err := checkHeader(start, n, fmt.Sprintf("package %d", hnum)); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return corrupt("reading the Packages table: %w", err)
	}
	return nil
}

// validateNDB follows go-rpmdb's ndb reader: a 32-byte header, SlotNPages
// pages of 16-byte slots, and for each used slot a blob at BlkOffset*16.
func validateNDB(r io.ReaderAt, size int64) error {
	var hdr [16]byte
	if _, err := r.ReadAt(hdr[:], 0); err != nil {
		return corrupt("NDB header: %w", err)
	}
	version := binary.LittleEndian.Uint32(hdr[4:])
	npages := int64(binary.LittleEndian.Uint32(hdr[12:]))
	if version != 0 || npages == 0 || npages > 2048 {
		return corrupt("unsupported NDB header (version %d, %d slot pages)", version, npages)
	}
	if npages*4096 > size {
		return corrupt("NDB slot pages (%d) extend past the end of the file (%d bytes)", npages, size)
	}
	slots := make([]byte, npages*4096-32)
	if _, err := r.ReadAt(slots, 32); err != nil {
		return corrupt("reading NDB slots: %w", err)
	}
	for i := 0; i+16 <= len(slots); i += 16 {
		s := slots[i : i+16]
		if binary.LittleEndian.Uint32(s) != ndbSlotMagic {
			return corrupt("NDB slot %d has a bad magic number", i/16)
		}
		pkg := binary.LittleEndian.Uint32(s[4:])
		if pkg == 0 {
			continue
		}
		off := int64(binary.LittleEndian.Uint32(s[8:])) * 16
		var bh [24]byte
		if off+int64(len(bh)) > size {
			return corrupt("NDB blob of package %d at offset %d is past the end of the file", pkg, off)
		}
		if _, err := r.ReadAt(bh[:], off); err != nil {
			return corrupt("reading NDB blob of package %d: %w", pkg, err)
		}
		n := int64(binary.LittleEndian.Uint32(bh[12:]))
		switch {
		case binary.LittleEndian.Uint32(bh[:]) != ndbBlobMagic:
			return corrupt("NDB blob of package %d has a bad magic number", pkg)
		case binary.LittleEndian.Uint32(bh[4:]) != pkg:
			return corrupt("NDB blob at offset %d belongs to package %d, not %d", off, binary.LittleEndian.Uint32(bh[4:]), pkg)
		case off+16+n > size:
			return corrupt("NDB blob of package %d (%d bytes) extends past the end of the file", pkg, n)
		}
		if err := checkHeader(bh[16:16+min(n, 8)], n, fmt.Sprintf("package %d", pkg)); err != nil {
			return err
		}
	}
	return nil
}

// Berkeley DB hash database layout, as go-rpmdb reads it.
const (
	bdbPageHeader   = 26
	bdbHashUnsorted = 2
	bdbHashOffPage  = 3 // HOFFPAGE item: the value is in an overflow chain
	bdbOverflow     = 7
	bdbHashMeta     = 8
	bdbHash         = 13
	bdbOffPageSize  = 12
)

// validateBDB follows go-rpmdb's bdb reader: the metadata page, then every
// hash page's HOFFPAGE values and their overflow page chains.
func validateBDB(r io.ReaderAt, size int64) error {
	meta := make([]byte, 512)
	if _, err := r.ReadAt(meta, 0); err != nil {
		return corrupt("Berkeley DB metadata page: %w", err)
	}
	order := binary.ByteOrder(binary.LittleEndian)
	if binary.LittleEndian.Uint32(meta[12:]) == bdbHashMagicS {
		order = binary.BigEndian
	}
	pageSize := int64(order.Uint32(meta[20:]))
	last := int64(order.Uint32(meta[32:]))
	switch {
	case meta[24] != 0:
		return corrupt("encrypted Berkeley DB databases are not supported")
	case meta[25] != bdbHashMeta:
		return corrupt("Berkeley DB database is not a hash database (page type %d)", meta[25])
	case pageSize < 512 || pageSize > 65536 || pageSize&(pageSize-1) != 0:
		return corrupt("unexpected Berkeley DB page size %d", pageSize)
	case (last+1)*pageSize > size:
		return corrupt("Berkeley DB database claims %d pages of %d bytes but the file has %d bytes", last+1, pageSize, size)
	}
	page := make([]byte, pageSize)
	chain := make([]byte, pageSize)
	inChain := make([]bool, last+1) // pages already seen in an overflow chain
	for pn := int64(0); pn <= last; pn++ {
		if _, err := r.ReadAt(page, pn*pageSize); err != nil {
			return corrupt("reading page %d: %w", pn, err)
		}
		if page[25] != bdbHashUnsorted && page[25] != bdbHash {
			continue
		}
		entries := int64(order.Uint16(page[20:]))
		if entries%2 != 0 || bdbPageHeader+2*entries > pageSize {
			return corrupt("hash page %d has a bad entry count %d", pn, entries)
		}
		for k := int64(1); k < entries; k += 2 {
			idx := int64(order.Uint16(page[bdbPageHeader+2*k:]))
			if idx >= pageSize {
				return corrupt("hash page %d: entry offset %d is outside the page", pn, idx)
			}
			if page[idx] != bdbHashOffPage {
				continue
			}
			if idx+bdbOffPageSize > pageSize || idx+bdbOffPageSize > 0xffff {
				return corrupt("hash page %d: entry at %d is cut off by the end of the page", pn, idx)
			}
			if err := checkChain(r, order, page[idx:idx+bdbOffPageSize], chain, pageSize, inChain, pn); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkChain follows the overflow chain of one HOFFPAGE entry. Each page may
// belong to one chain only, which rules out cycles and bounds the total work
// by the number of pages.
func checkChain(r io.ReaderAt, order binary.ByteOrder, entry, page []byte, pageSize int64, inChain []bool, from int64) error {
	var (
		n     int64
		start []byte
	)
	first := int64(order.Uint32(entry[4:]))
	for pn := first; pn != 0; {
		if pn >= int64(len(inChain)) {
			return corrupt("overflow chain from hash page %d points to page %d, past the last page", from, pn)
		}
		if inChain[pn] {
			return corrupt("overflow page %d is used twice (a loop or a shared chain)", pn)
		}
		inChain[pn] = true
		if _, err := r.ReadAt(page, pn*pageSize); err != nil {
			return corrupt("reading page %d: %w", pn, err)
		}
		if page[25] != bdbOverflow {
			return corrupt("page %d in an overflow chain has page type %d", pn, page[25])
		}
		next := int64(order.Uint32(page[16:]))
		used := pageSize - bdbPageHeader
		if next == 0 {
			used = int64(order.Uint16(page[22:]))
			if bdbPageHeader+used > pageSize {
				return corrupt("overflow page %d claims %d bytes, more than a page", pn, used)
			}
		}
		if len(start) < 8 {
			start = append(start, page[bdbPageHeader:bdbPageHeader+min(used, 8-int64(len(start)))]...)
		}
		n += used
		pn = next
	}
	return checkHeader(start, n, fmt.Sprintf("overflow chain at page %d", first))
}
