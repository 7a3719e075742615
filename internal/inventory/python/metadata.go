package python

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"path"
	"strings"

	"github.com/mamorisec/mamori/internal/inventory"
)

type installed struct{}

// NewInstalled returns the extractor for installed distributions: the
// core metadata files of wheels (*.dist-info/METADATA) and eggs
// (*.egg-info/PKG-INFO, *.egg-info files, EGG-INFO/PKG-INFO).
func NewInstalled() inventory.Extractor { return installed{} }

func (installed) Name() string { return "language/python/installed" }

func (installed) Version() int { return 1 }

func (installed) Required(fi inventory.FileInfo) bool {
	dir, base := path.Split(fi.Path)
	dir = strings.TrimSuffix(dir, "/")
	switch {
	case base == "METADATA":
		return strings.HasSuffix(dir, ".dist-info")
	case base == "PKG-INFO":
		return strings.HasSuffix(dir, ".egg-info") || path.Base(dir) == "EGG-INFO"
	}
	// Required is only asked about regular files, so this is an egg-info
	// file, not a directory.
	return strings.HasSuffix(base, ".egg-info")
}

func (installed) Extract(_ context.Context, in *inventory.Input) (inventory.Result, error) {
	b, err := inventory.ReadAllLimited(in.Reader, inventory.MaxManifestSize)
	if err != nil {
		return inventory.Result{}, fmt.Errorf("%s: %w", in.Path, err)
	}
	p, err := ParseMetadata(b)
	if err != nil {
		return inventory.Result{}, fmt.Errorf("%s: %w", in.Path, err)
	}
	return inventory.Result{Packages: []inventory.Package{p}}, nil
}

// maxLicenseLen is the longest License header value taken as a license
// name; longer values are license texts.
const maxLicenseLen = 100

// ParseMetadata reads a core metadata file (RFC 822 style headers followed
// by the description). Licenses come from License-Expression, else from a
// short one-line License header, else from "License ::" classifiers.
func ParseMetadata(b []byte) (inventory.Package, error) {
	h := parseHeaders(b)
	name := h.first("name")
	version := h.first("version")
	if name == "" {
		return inventory.Package{}, fmt.Errorf("parsing package metadata: no Name header")
	}
	if version == "" {
		return inventory.Package{}, fmt.Errorf("parsing package metadata: no Version header for %s", name)
	}
	return newPackage(name, version, h.licenses(), false), nil
}

// headers maps lowercased header names to their values in order.
type headers map[string][]string

func (h headers) first(key string) string {
	if v := h[key]; len(v) > 0 {
		return strings.TrimSpace(v[0])
	}
	return ""
}

// licenses picks the declared licenses.
func (h headers) licenses() []string {
	if e := h.first("license-expression"); e != "" {
		return []string{e}
	}
	if l := h.first("license"); l != "" && len(l) <= maxLicenseLen && !strings.Contains(l, "\n") && l != "UNKNOWN" {
		return []string{l}
	}
	var out []string
	for _, c := range h["classifier"] {
		if id := classifierLicense(strings.TrimSpace(c)); id != "" {
			out = append(out, id)
		}
	}
	return out
}

// parseHeaders reads headers up to the first empty line. Continuation
// lines (starting with white space) are appended to the previous value
// after a newline. Like Python's email parser, a line that is not a header
// ends the headers.
func parseHeaders(b []byte) headers {
	h := headers{}
	var last string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 64<<10), inventory.MaxManifestSize)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if line == "" {
			break // white space only is a continuation line
		}
		if line[0] == ' ' || line[0] == '\t' {
			if vals := h[last]; len(vals) > 0 {
				vals[len(vals)-1] += "\n" + strings.TrimSpace(line)
			}
			continue
		}
		key, value, ok := strings.Cut(line, ":")
		if !ok || key == "" || strings.ContainsAny(key, " \t") {
			break
		}
		last = strings.ToLower(key)
		h[last] = append(h[last], strings.TrimSpace(value))
	}
	return h
}

// classifierLicenses maps the last part of common "License ::" trove
// classifiers to SPDX license IDs. "Apache Software License" names no
// version; it is taken as Apache-2.0, which nearly every Python package
// using it means. Classifiers that name no single license ("BSD License",
// "GNU General Public License (GPL)") are reported as written.
var classifierLicenses = map[string]string{
	"Apache Software License":                                    "Apache-2.0",
	"Boost Software License 1.0 (BSL-1.0)":                       "BSL-1.0",
	"CC0 1.0 Universal (CC0 1.0) Public Domain Dedication":       "CC0-1.0",
	"Eclipse Public License 1.0 (EPL-1.0)":                       "EPL-1.0",
	"Eclipse Public License 2.0 (EPL-2.0)":                       "EPL-2.0",
	"European Union Public Licence 1.2 (EUPL 1.2)":               "EUPL-1.2",
	"GNU Affero General Public License v3":                       "AGPL-3.0-only",
	"GNU Affero General Public License v3 or later (AGPLv3+)":    "AGPL-3.0-or-later",
	"GNU General Public License v2 (GPLv2)":                      "GPL-2.0-only",
	"GNU General Public License v2 or later (GPLv2+)":            "GPL-2.0-or-later",
	"GNU General Public License v3 (GPLv3)":                      "GPL-3.0-only",
	"GNU General Public License v3 or later (GPLv3+)":            "GPL-3.0-or-later",
	"GNU Lesser General Public License v2 (LGPLv2)":              "LGPL-2.0-only",
	"GNU Lesser General Public License v2 or later (LGPLv2+)":    "LGPL-2.0-or-later",
	"GNU Lesser General Public License v3 (LGPLv3)":              "LGPL-3.0-only",
	"GNU Lesser General Public License v3 or later (LGPLv3+)":    "LGPL-3.0-or-later",
	"Historical Permission Notice and Disclaimer (HPND)":         "HPND",
	"ISC License (ISCL)":                                         "ISC",
	"MIT License":                                                "MIT",
	"MIT No Attribution License (MIT-0)":                         "MIT-0",
	"Mozilla Public License 1.1 (MPL 1.1)":                       "MPL-1.1",
	"Mozilla Public License 2.0 (MPL 2.0)":                       "MPL-2.0",
	"Python Software Foundation License":                         "PSF-2.0",
	"The Unlicense (Unlicense)":                                  "Unlicense",
	"Universal Permissive License (UPL)":                         "UPL-1.0",
	"zlib/libpng License":                                        "Zlib",
	"Mozilla Public License 1.0 (MPL)":                           "MPL-1.0",
	"W3C License":                                                "W3C",
	"Attribution Assurance License":                              "AAL",
	"Common Development and Distribution License 1.0 (CDDL-1.0)": "CDDL-1.0",
	"Common Public License":                                      "CPL-1.0",
	"European Union Public Licence 1.1 (EUPL 1.1)":               "EUPL-1.1",
	"IBM Public License":                                         "IPL-1.0",
	"Intel Open Source License":                                  "Intel",
	"MirOS License (MirOS)":                                      "MirOS",
	"Motosoto License":                                           "Motosoto",
	"Nokia Open Source License":                                  "Nokia",
	"Open Group Test Suite License":                              "OGTSL",
	"Open Software License 3.0 (OSL-3.0)":                        "OSL-3.0",
	"PostgreSQL License":                                         "PostgreSQL",
	"Python License (CNRI Python License)":                       "CNRI-Python",
	"Qt Public License (QPL)":                                    "QPL-1.0",
	"Ricoh Source Code Public License":                           "RSCPL",
	"SIL Open Font License 1.1 (OFL-1.1)":                        "OFL-1.1",
	"Sleepycat License":                                          "Sleepycat",
	"Sun Public License":                                         "SPL-1.0",
	"University of Illinois/NCSA Open Source License":            "NCSA",
	"Vovida Software License 1.0":                                "VSL-1.0",
	"X.Net License":                                              "Xnet",
	"Nethack General Public License":                             "NGPL",
}

// classifierLicense returns the license a trove classifier declares: an
// SPDX ID when known, else the classifier's last part. Classifiers that are
// not about licenses, and the bare "License :: OSI Approved", give "".
func classifierLicense(c string) string {
	if !strings.HasPrefix(c, "License ::") {
		return ""
	}
	parts := strings.Split(c, "::")
	last := strings.TrimSpace(parts[len(parts)-1])
	if last == "" || last == "OSI Approved" || last == "DFSG approved" {
		return ""
	}
	if id := classifierLicenses[last]; id != "" {
		return id
	}
	return last
}
