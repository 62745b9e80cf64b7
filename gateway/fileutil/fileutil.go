// Package fileutil writes files so that a crash or power cut leaves either
// the old content or the new one, never a mix.
package fileutil

import (
	"os"
	"path/filepath"
)

// WriteAtomic replaces path with data: a temporary file beside it, fsync,
// rename over path, fsync of the directory (the syncs only when sync is
// set). On error path is unchanged and the temporary file removed.
func WriteAtomic(path string, data []byte, sync bool) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil && sync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	if sync {
		SyncDir(filepath.Dir(path))
	}
	return nil
}

// SyncDir fsyncs a directory, so that names created or renamed in it
// survive a power cut. Errors are ignored: not every filesystem can.
func SyncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}
