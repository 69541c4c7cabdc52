// Command pipebench measures how fast `pipeline extract` is against its
// ceilings, on the full VGG-16 and ResNet-50 architectures the project
// generates (random weights: speed does not depend on them):
//
//	pipebench run [flags]      end-to-end pipeline extract, raw forward,
//	                           PyTorch peer, GEMM roofline, ratios
//	pipebench mem [flags]      peak RSS over n and 8 x n images
//	pipebench forward [flags]  one raw-forward measurement (JSON)
//	pipebench flops [flags]    MACs of a model up to a layer (JSON)
//
// bench/run.sh builds it and installs the peer's Python packages; see
// docs/PERFORMANCE.md. Every measurement runs in its own process, one at
// a time; results go to bench/out (git-ignored).
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

func main() {
	err := run(os.Args[1:], os.Stdout, os.Stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
	case err != nil:
		fmt.Fprintln(os.Stderr, "pipebench:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	cmd := "run"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "run":
		return cmdRun(args, stdout, stderr)
	case "mem":
		return cmdMem(args, stdout, stderr)
	case "forward":
		return cmdForward(args, stdout, stderr)
	case "flops":
		return cmdFlops(args, stdout, stderr)
	case "help":
		fmt.Fprintln(stdout, "usage: pipebench [run|mem|forward|flops] [flags]; pipebench CMD -h lists the flags")
		return nil
	}
	return fmt.Errorf("unknown command %q: want run, mem, forward or flops", cmd)
}
