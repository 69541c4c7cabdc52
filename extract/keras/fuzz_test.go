package keras

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzRead: whatever the bytes, Read and Convert return (an error or a
// graph); libhdf5 must not bring the process down. The seeds are a valid
// tiny VGG16 file and damaged copies of its header region.
func FuzzRead(f *testing.F) {
	tc := tinyCases()[1]
	file, err := tc.spec.RandomFile(1, WeightsNested)
	if err != nil {
		f.Fatal(err)
	}
	path := filepath.Join(f.TempDir(), "seed.h5")
	if err := Write(path, file, WriteOptions{}); err != nil {
		f.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	for _, at := range []int{0, 8, 40, 96, 200, 512, 800, 1400, 2048, 4000, 6000} {
		b := append([]byte(nil), data...)
		b[at] ^= 0x5a
		f.Add(b)
	}
	f.Add(data[:len(data)/3])
	f.Fuzz(func(t *testing.T, b []byte) {
		p := filepath.Join(t.TempDir(), "f.h5")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		kf, err := Read(p)
		if err != nil {
			return
		}
		Convert(kf, Options{InputSize: 64}) //nolint:errcheck // an error is a fine outcome
	})
}
