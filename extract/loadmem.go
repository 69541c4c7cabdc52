package extract

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"pipeline/errclass"
)

// ErrLoadMemory: the memory the process may still use cannot hold the
// model's network.
var ErrLoadMemory = errclass.New(errclass.Fatal, "not enough memory to load the model")

// What loading a network costs in address space, measured with the oneDNN
// engine on the generated VGG-16 (a 553 MB file: +2.8 GB) and ResNet-50
// (103 MB: +1.2 GB), 2 threads: about 3.6 bytes per byte of the model's
// files (the file read, the decoded tensors, the engine's own copies), and
// 0.8 GB for the engine's threads (stacks, malloc arenas) whatever the
// model. The estimate rounds both down a little: a load it lets through
// can still run out of memory by a few hundred MB, but one it refuses
// would not have fitted (docs/OPERATIONS.md).
const (
	loadBytesPerFileByte = 3.5
	loadThreadsBytes     = 768 << 20
)

// CheckLoadMemory fails cleanly, naming the model file, when the address
// space the process may still take (RLIMIT_AS: `ulimit -v`) or the
// machine's memory (the kernel's overcommit check) cannot hold what loading
// the network nets times needs, estimated from its files' size. Go cannot
// recover from running out of memory ("fatal error: out of memory", a
// goroutine dump, exit 2), so the check reserves that much address space
// once, before the load, and gives it back at once. A file it cannot stat
// is left to the load to report.
func CheckLoadMemory(m Model, nets int) error {
	var size int64
	for _, p := range []string{m.Path, m.Config} {
		if p == "" {
			continue
		}
		fi, err := os.Stat(p)
		if err != nil {
			return nil
		}
		size += fi.Size()
	}
	need := int64(float64(size)*loadBytesPerFileByte)*int64(max(nets, 1)) + loadThreadsBytes
	b, err := syscall.Mmap(-1, 0, int(need), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err == nil {
		syscall.Munmap(b)
		return nil
	}
	if !errors.Is(err, syscall.ENOMEM) {
		return nil
	}
	var lim syscall.Rlimit
	where := "the machine's memory cannot hold it"
	if syscall.Getrlimit(syscall.RLIMIT_AS, &lim) == nil && lim.Cur != ^uint64(0) {
		where = fmt.Sprintf("the process may use %d MiB of address space in all (ulimit -v %d)", lim.Cur>>20, lim.Cur>>10)
	}
	return fmt.Errorf("%w: %s (%d MiB) needs about %d MiB more to load, and %s",
		ErrLoadMemory, m.Path, size>>20, need>>20, where)
}
