// Command kubectl-serin is Serin's kubectl plugin, run as `kubectl serin`.
// Each subcommand lives in a file of its own and is added in
// newRootCommand.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// exitError ends the command with an exit code other than 1.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }

// run executes the command line and returns the exit code, so that tests
// run the plugin in-process.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRootCommand()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.Execute()
	if err == nil {
		return 0
	}
	fmt.Fprintln(stderr, "error:", err)
	if e := (*exitError)(nil); errors.As(err, &e) {
		return e.code
	}
	return 1
}

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "kubectl-serin",
		Short: "Work with Serin progressive-delivery resources",
		// Errors are printed once, by run, and usage only on request.
		SilenceErrors: true,
		SilenceUsage:  true,
		Annotations:   map[string]string{cobra.CommandDisplayNameAnnotation: "kubectl serin"},
	}
	// The commands that talk to the cluster share kubectl's flags.
	k := newKube()
	k.flags.AddFlags(root.PersistentFlags())
	root.AddCommand(newConvertCommand(), newVersionCommand(),
		newGetCommand(k), newStatusCommand(k),
		newPromoteCommand(k), newAbortCommand(k), newRetryCommand(k), newPauseCommand(k), newResumeCommand(k), newUndoCommand(k))
	return root
}
