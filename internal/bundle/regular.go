package bundle

import (
	"fmt"
	"io/fs"
	"os"
)

// checkRegular returns an error unless fi is a regular file. Bundles and
// their parts are read only from regular files: opening a named pipe blocks
// until something writes to it, and a device may never end.
func checkRegular(fi fs.FileInfo) error {
	if fi.Mode().IsRegular() {
		return nil
	}
	kind := "not a regular file"
	switch m := fi.Mode(); {
	case m&fs.ModeNamedPipe != 0:
		kind = "a named pipe"
	case m&fs.ModeDevice != 0:
		kind = "a device"
	case m&fs.ModeSocket != 0:
		kind = "a socket"
	case m.IsDir():
		kind = "a directory"
	}
	return fmt.Errorf("%s, not a regular file (ferry reads bundles from regular files only: copy it to one first)", kind)
}

// openRegular opens path for reading if it is a regular file. It checks
// before opening, so that a named pipe is refused instead of blocking, and
// again after, in case something else was put at path in between.
func openRegular(path string) (*os.File, fs.FileInfo, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, nil, err
	}
	if err := checkRegular(fi); err != nil {
		return nil, nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	if fi, err = f.Stat(); err == nil {
		err = checkRegular(fi)
	}
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, fi, nil
}
