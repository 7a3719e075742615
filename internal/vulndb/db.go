package vulndb

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Bucket names of the database file.
var (
	bucketMeta     = []byte("meta")
	bucketRecords  = []byte("records")
	bucketAffected = []byte("affected")
	keyInfo        = []byte("info")
)

// DB is an open, read-only vulnerability database. Lookups are safe for
// concurrent use. The file is memory-mapped, so many scans can share one
// file and its pages.
type DB struct {
	path string
	bolt *bolt.DB
	info Info
}

// ErrCorrupt is wrapped by errors about a damaged database file.
var ErrCorrupt = errors.New("vulnerability database is corrupt")

// Open opens the database file at path read-only. It fails with a clear
// error when the file is missing, truncated, corrupt or of another schema.
func Open(path string) (db *DB, err error) {
	st, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("no vulnerability database at %s: run `mamori db update`, `mamori db import BUNDLE` or `mamori db build`", path)
		}
		return nil, fmt.Errorf("vulnerability database %s: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("vulnerability database %s is not a regular file", path)
	}
	defer guard(path, &err)
	b, err := bolt.Open(path, 0o444, &bolt.Options{ReadOnly: true, Timeout: 10 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, path, err)
	}
	db = &DB{path: path, bolt: b}
	if err := db.readInfo(st.Size()); err != nil {
		b.Close()
		return nil, err
	}
	return db, nil
}

// guard turns a fault or panic while reading a damaged memory-mapped file
// into ErrCorrupt.
func guard(path string, err *error) {
	if p := recover(); p != nil {
		*err = fmt.Errorf("%w: %s: %v", ErrCorrupt, path, p)
	}
}

func (db *DB) readInfo(size int64) (err error) {
	old := debug.SetPanicOnFault(true)
	defer debug.SetPanicOnFault(old)
	return db.bolt.View(func(tx *bolt.Tx) error {
		if tx.Size() > size {
			return fmt.Errorf("%w: %s is truncated (%d of %d bytes)", ErrCorrupt, db.path, size, tx.Size())
		}
		m := tx.Bucket(bucketMeta)
		if m == nil || tx.Bucket(bucketRecords) == nil || tx.Bucket(bucketAffected) == nil {
			return fmt.Errorf("%w: %s is not a mamori vulnerability database", ErrCorrupt, db.path)
		}
		if err := json.Unmarshal(m.Get(keyInfo), &db.info); err != nil {
			return fmt.Errorf("%w: %s: unreadable info: %v", ErrCorrupt, db.path, err)
		}
		if db.info.Schema != SchemaVersion {
			return fmt.Errorf("vulnerability database %s has schema %d, this mamori reads schema %d: run `mamori db update` or rebuild it", db.path, db.info.Schema, SchemaVersion)
		}
		return nil
	})
}

// Path returns the file the database was opened from.
func (db *DB) Path() string { return db.path }

// Info returns what the database holds and where it came from.
func (db *DB) Info() Info { return db.info }

// Close closes the database.
func (db *DB) Close() error { return db.bolt.Close() }

// Verify reads every page of the file and checks its structure. It is
// slower than Open and is used when importing a bundle.
func (db *DB) Verify() (err error) {
	defer guard(db.path, &err)
	old := debug.SetPanicOnFault(true)
	defer debug.SetPanicOnFault(old)
	return db.bolt.View(func(tx *bolt.Tx) error {
		for e := range tx.Check() {
			return fmt.Errorf("%w: %s: %v", ErrCorrupt, db.path, e)
		}
		for _, bn := range [][]byte{bucketRecords, bucketAffected} {
			if err := tx.Bucket(bn).ForEach(func(k, v []byte) error {
				if !json.Valid(v) {
					return fmt.Errorf("%w: %s: bucket %s key %q holds invalid data", ErrCorrupt, db.path, bn, k)
				}
				return nil
			}); err != nil {
				return err
			}
		}
		return nil
	})
}

// Affected returns the affected entries stored for a package name in a
// base ecosystem ("Debian", "Go", "PyPI", ...), across all releases.
func (db *DB) Affected(base, name string) (out []Affected, err error) {
	defer guard(db.path, &err)
	old := debug.SetPanicOnFault(true)
	defer debug.SetPanicOnFault(old)
	err = db.bolt.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketAffected).Get(key(base, name))
		if v == nil {
			return nil
		}
		if err := json.Unmarshal(v, &out); err != nil {
			return fmt.Errorf("%w: %s: entry for %s/%s: %v", ErrCorrupt, db.path, base, name, err)
		}
		return nil
	})
	return out, err
}

// Record returns the record with the given ID, or nil when there is none.
func (db *DB) Record(id string) (r *Record, err error) {
	defer guard(db.path, &err)
	old := debug.SetPanicOnFault(true)
	defer debug.SetPanicOnFault(old)
	err = db.bolt.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketRecords).Get([]byte(id))
		if v == nil {
			return nil
		}
		r = new(Record)
		if err := json.Unmarshal(v, r); err != nil {
			return fmt.Errorf("%w: %s: record %s: %v", ErrCorrupt, db.path, id, err)
		}
		return nil
	})
	return r, err
}

// writeDB writes a complete database to a temporary file next to path,
// syncs it and renames it over path.
func writeDB(path string, info *Info, records map[string]*Record, affected map[string][]Affected) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("creating database directory: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".mamori-db-*")
	if err != nil {
		return fmt.Errorf("creating database file in %s: %w", dir, err)
	}
	tmpName := tmp.Name()
	tmp.Close()
	defer func() {
		if err != nil {
			os.Remove(tmpName)
		}
	}()
	b, err := bolt.Open(tmpName, 0o644, &bolt.Options{NoFreelistSync: true, NoSync: true})
	if err != nil {
		return fmt.Errorf("creating database %s: %w", tmpName, err)
	}
	err = b.Update(func(tx *bolt.Tx) error {
		if err := putSorted(tx, bucketRecords, len(records), func(yield func(string, any)) {
			for k, v := range records {
				yield(k, v)
			}
		}); err != nil {
			return err
		}
		if err := putSorted(tx, bucketAffected, len(affected), func(yield func(string, any)) {
			for k, v := range affected {
				slices.SortStableFunc(v, func(a, b Affected) int { return cmp.Compare(a.ID, b.ID) })
				yield(k, v)
			}
		}); err != nil {
			return err
		}
		m, err := tx.CreateBucket(bucketMeta)
		if err != nil {
			return err
		}
		j, err := json.Marshal(info)
		if err != nil {
			return err
		}
		return m.Put(keyInfo, j)
	})
	if err == nil {
		err = b.Sync()
	}
	if cerr := b.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing database %s: %w", path, err)
	}
	if err := os.Chmod(tmpName, 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmpName, path); err != nil {
		return fmt.Errorf("replacing database %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// putSorted creates a bucket and fills it in key order, which bbolt
// writes fastest and packs tightest.
func putSorted(tx *bolt.Tx, name []byte, n int, each func(func(string, any))) error {
	bk, err := tx.CreateBucket(name)
	if err != nil {
		return err
	}
	bk.FillPercent = 1.0
	type kv struct {
		k string
		v any
	}
	all := make([]kv, 0, n)
	each(func(k string, v any) { all = append(all, kv{k, v}) })
	slices.SortFunc(all, func(a, b kv) int { return cmp.Compare(a.k, b.k) })
	for _, e := range all {
		j, err := json.Marshal(e.v)
		if err != nil {
			return err
		}
		if err := bk.Put([]byte(e.k), j); err != nil {
			return fmt.Errorf("bucket %s key %q: %w", name, e.k, err)
		}
	}
	return nil
}
