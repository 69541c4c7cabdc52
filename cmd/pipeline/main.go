// Command pipeline extracts CNN codes of images into SQLite with OpenCV's DNN
// module and trains classical classifiers on them. See README.md.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// A second signal ends the process at once: the work in flight is lost,
	// what was committed stays (every batch is one transaction).
	go func() {
		<-ctx.Done()
		stop()
		hard := make(chan os.Signal, 1)
		signal.Notify(hard, os.Interrupt, syscall.SIGTERM)
		<-hard
		fmt.Fprintln(os.Stderr, "pipeline: second interrupt, exiting now")
		os.Exit(ExitInterrupted)
	}()
	os.Exit(Main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
