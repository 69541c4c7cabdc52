package classify

// #include <stdlib.h>
import "C"

import "sync"

// crandMu serialises the liblinear solvers that shuffle with C's global
// rand(): seeding it right before training makes them deterministic, as
// long as nothing else in the process calls rand() meanwhile.
var crandMu sync.Mutex

// withCRand runs f with C's rand() seeded, holding crandMu.
func withCRand(seed uint32, f func()) {
	crandMu.Lock()
	defer crandMu.Unlock()
	C.srand(C.uint(seed))
	f()
}
