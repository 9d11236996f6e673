package store

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// preallocated opens a store in a new directory, appends entries 1 to n
// and waits until they are durable. It skips the test where segments are
// not preallocated (not Linux, or a file system without fallocate).
func preallocated(t *testing.T, n uint64) (*Store, string, []Entry) {
	t.Helper()
	dir := t.TempDir()
	s, _ := open(t, Options{Dir: dir})
	t.Cleanup(func() { s.Close() })
	if fi, err := os.Stat(filepath.Join(dir, segName(1))); err != nil || fi.Size() != segmentPrealloc {
		t.Skipf("log segments are not preallocated here (%v, %v)", fi.Size(), err)
	}
	var want []Entry
	for i := uint64(1); i <= n; i++ {
		done := make(chan error, 1)
		s.Append(i, line(i, i), done)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		want = append(want, Entry{Seq: i, Line: line(i, i)})
	}
	return s, dir, want
}

// crashCopy copies the files of the open store directory dir to a new
// directory: what a crash leaves (the newest segment with its
// preallocated zeros).
func crashCopy(t *testing.T, dir string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "s")
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range files(t, dir) {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// logicalSize is the size of a segment holding entries 1 to n.
func logicalSize(n uint64) int64 {
	size := int64(headerSize)
	for i := uint64(1); i <= n; i++ {
		size += int64(len(appendEntry(nil, i, line(i, i))))
	}
	return size
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// TestPreallocatedSegmentAfterCrash: the zeros after the records of the
// newest segment are its end, not damage: Check finds nothing wrong, Open
// recovers every entry without a warning and cuts the zeros, so that the
// segment, now an older one, ends with its last record.
func TestPreallocatedSegmentAfterCrash(t *testing.T) {
	s, dir, want := preallocated(t, 10)
	crashed := crashCopy(t, dir)
	seg := filepath.Join(crashed, segName(1))
	if got := fileSize(t, seg); got != segmentPrealloc {
		t.Fatalf("segment of an open store is %d bytes, want %d preallocated", got, segmentPrealloc)
	}

	r, err := Check(crashed)
	if err != nil {
		t.Fatal(err)
	}
	if r.Damage != nil || r.Torn != nil || r.Entries != 10 || len(r.Segments) != 1 || r.Segments[0].Bytes != logicalSize(10) {
		t.Fatalf("check: %+v", r)
	}

	var logs logBuffer
	s2, st := open(t, Options{Dir: crashed, Logger: logs.logger()})
	if !slices.Equal(st.Entries, want) {
		t.Fatalf("recovered %v, want %v", st.Entries, want)
	}
	if strings.Contains(logs.String(), "WARN") || !strings.Contains(logs.String(), "cutting the preallocated space") {
		t.Fatalf("log:\n%s", logs.String())
	}
	if got := fileSize(t, seg); got != logicalSize(10) {
		t.Fatalf("older segment is %d bytes, want %d", got, logicalSize(10))
	}
	done := make(chan error, 1)
	s2.Append(11, line(11, 11), done)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	closeStore(t, s2)
	logs = logBuffer{}
	s2, st = open(t, Options{Dir: crashed, Logger: logs.logger()})
	if want := append(want, Entry{Seq: 11, Line: line(11, 11)}); !slices.Equal(st.Entries, want) {
		t.Fatalf("after reopen %d entries, want %d", len(st.Entries), len(want))
	}
	if strings.Contains(logs.String(), "WARN") {
		t.Fatalf("warning on second open:\n%s", logs.String())
	}
	closeStore(t, s2)

	// Close cuts the zeros too.
	closeStore(t, s)
	if got := fileSize(t, filepath.Join(dir, segName(1))); got != logicalSize(10) {
		t.Fatalf("closed segment is %d bytes, want %d", got, logicalSize(10))
	}
}

// TestTornWriteInPreallocatedSpace: a record cut short in the zeros is a
// torn write, cut and logged as one.
func TestTornWriteInPreallocatedSpace(t *testing.T) {
	_, dir, want := preallocated(t, 10)
	crashed := crashCopy(t, dir)
	seg := filepath.Join(crashed, segName(1))
	rec := appendEntry(nil, 11, line(11, 11))
	f, err := os.OpenFile(seg, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	end := logicalSize(10)
	if _, err := f.WriteAt(rec[:len(rec)/2], end); err != nil {
		t.Fatal(err)
	}
	f.Close()
	var logs logBuffer
	s, st := open(t, Options{Dir: crashed, Logger: logs.logger()})
	defer closeStore(t, s)
	if !slices.Equal(st.Entries, want) {
		t.Fatalf("recovered %d entries, want %d", len(st.Entries), len(want))
	}
	if !strings.Contains(logs.String(), "cutting a torn write at the end of the log") {
		t.Fatalf("no torn write logged:\n%s", logs.String())
	}
	if got := fileSize(t, seg); got != end {
		t.Fatalf("segment is %d bytes, want %d", got, end)
	}
}

// TestZeroedRecordInPreallocatedSegment: zeros where a record was, with
// records after them, are damage, even in the newest segment.
func TestZeroedRecordInPreallocatedSegment(t *testing.T) {
	_, dir, _ := preallocated(t, 10)
	crashed := crashCopy(t, dir)
	seg := filepath.Join(crashed, segName(1))
	offs, _ := recordOffsets(t, seg)
	if len(offs) != 10 {
		t.Fatalf("%d records", len(offs))
	}
	f, err := os.OpenFile(seg, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(make([]byte, offs[5]-offs[4]), offs[4]); err != nil {
		t.Fatal(err)
	}
	f.Close()
	_, _, err = Open(Options{Dir: crashed})
	var d *Damage
	if !errors.As(err, &d) || d.File != seg || d.Offset != offs[4] || !strings.Contains(d.Reason, "5 intact records after it") {
		t.Fatalf("Open: %v, want damage at offset %d of %s with 5 records after it", err, offs[4], seg)
	}
}

// TestZerosAtTheEndOfAnOlderSegment: only the newest segment may end in
// zeros; in an older one they are damage.
func TestZerosAtTheEndOfAnOlderSegment(t *testing.T) {
	s, dir, _ := preallocated(t, 10)
	closeStore(t, s)
	s, _ = open(t, Options{Dir: dir})
	closeStore(t, s)
	seg := filepath.Join(dir, segName(1))
	f, err := os.OpenFile(seg, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(make([]byte, 4096)); err != nil {
		t.Fatal(err)
	}
	f.Close()
	_, _, err = Open(Options{Dir: dir})
	var d *Damage
	if !errors.As(err, &d) || d.File != seg || d.Offset != logicalSize(10) {
		t.Fatalf("Open: %v, want damage at offset %d of %s", err, logicalSize(10), seg)
	}
}

// TestPreallocationGrows: a segment written past its preallocated room is
// extended by another step, and reads back whole.
func TestPreallocationGrows(t *testing.T) {
	s, dir, _ := preallocated(t, 0)
	big := strings.Repeat("x", 1<<20)
	var want []Entry
	for i := uint64(1); i <= 20; i++ {
		done := make(chan error, 1)
		l := line(i, i) + big
		s.Append(i, l, done)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		want = append(want, Entry{Seq: i, Line: l})
	}
	if got := fileSize(t, filepath.Join(dir, segName(1))); got != 2*segmentPrealloc {
		t.Errorf("segment of 20 MiB is %d bytes on disk, want %d", got, 2*segmentPrealloc)
	}
	crashed := crashCopy(t, dir)
	closeStore(t, s)
	for _, d := range []string{dir, crashed} {
		s, st := open(t, Options{Dir: d})
		if !slices.Equal(st.Entries, want) {
			t.Errorf("%s: recovered %d entries, want %d", d, len(st.Entries), len(want))
		}
		closeStore(t, s)
	}
}
