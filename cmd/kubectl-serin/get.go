package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/serin-dev/serin/pkg/analysis"
	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
)

func newGetCommand(k *kube) *cobra.Command {
	var allNamespaces, watchChanges bool
	cmd := &cobra.Command{
		Use:     "get [NAME]",
		Aliases: []string{"list"},
		Short:   "List Canaries and where their releases are",
		Long: `List the Canaries of a namespace (all with -A), or one by name, with the
phase of their release, the canary weight, failed checks of the threshold,
the step of the schedule reached and the age. With -w, keep watching and
print a row whenever one changes.`,
		Example: `  kubectl serin get -A
  kubectl serin list -n test -w`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if allNamespaces && len(args) > 0 {
				return fmt.Errorf("a NAME cannot be combined with --all-namespaces")
			}
			c, ns, err := k.client()
			if err != nil {
				return err
			}
			if allNamespaces {
				ns = ""
			}
			name := ""
			if len(args) > 0 {
				name = args[0]
			}
			return listCanaries(cmd.Context(), c, cmd.OutOrStdout(), ns, name, watchChanges)
		},
	}
	cmd.Flags().BoolVarP(&allNamespaces, "all-namespaces", "A", false, "list the Canaries of every namespace")
	cmd.Flags().BoolVarP(&watchChanges, "watch", "w", false, "after listing, print a row whenever a Canary changes")
	return cmd
}

var tableHeader = []string{"NAMESPACE", "NAME", "PHASE", "WEIGHT", "FAILED", "STEP", "AGE"}

func listCanaries(ctx context.Context, c client.WithWatch, out io.Writer, ns, name string, watchChanges bool) error {
	var list serinv1.CanaryList
	opts := []client.ListOption{client.InNamespace(ns)}
	if name != "" {
		opts = append(opts, client.MatchingFields{"metadata.name": name})
	}
	if err := c.List(ctx, &list, opts...); err != nil {
		return err
	}
	if name != "" && len(list.Items) == 0 && !watchChanges {
		return fmt.Errorf("canary %s/%s not found", ns, name)
	}
	// Columns narrower than the minimum width stay aligned across the rows
	// of a watch, which are flushed one at a time.
	w := tabwriter.NewWriter(out, 8, 4, 3, ' ', 0)
	printRow(w, tableHeader)
	now := time.Now()
	for i := range list.Items {
		printRow(w, canaryRow(&list.Items[i], now))
	}
	if err := w.Flush(); err != nil || !watchChanges {
		return err
	}

	watcher, err := c.Watch(ctx, &serinv1.CanaryList{}, append(opts, &client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: list.ResourceVersion}})...)
	if err != nil {
		return err
	}
	defer watcher.Stop()
	last := map[string]string{}
	for i := range list.Items {
		last[client.ObjectKeyFromObject(&list.Items[i]).String()] = fmt.Sprint(canaryRow(&list.Items[i], now)[:6])
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-watcher.ResultChan():
			if !ok {
				return fmt.Errorf("the watch ended")
			}
			if ev.Type == watch.Error {
				return fmt.Errorf("watching canaries: %v", ev.Object)
			}
			canary, isCanary := ev.Object.(*serinv1.Canary)
			if !isCanary {
				continue
			}
			row := canaryRow(canary, time.Now())
			if ev.Type == watch.Deleted {
				row[2] = "Deleted"
			}
			// A row for every visible change: the AGE column alone is no
			// change, and neither are status patches that move nothing shown.
			key, shown := client.ObjectKeyFromObject(canary).String(), fmt.Sprint(row[:6])
			if last[key] == shown {
				continue
			}
			last[key] = shown
			printRow(w, row)
			if err := w.Flush(); err != nil {
				return err
			}
		}
	}
}

func printRow(w io.Writer, cells []string) {
	for i, cell := range cells {
		if i > 0 {
			fmt.Fprint(w, "\t")
		}
		fmt.Fprint(w, cell)
	}
	fmt.Fprintln(w)
}

// canaryRow is a Canary's row of the table.
func canaryRow(c *serinv1.Canary, now time.Time) []string {
	phase := string(c.Status.Phase)
	if phase == "" {
		phase = "<none>"
	}
	if c.Status.Paused {
		phase += "(paused)"
	}
	threshold := c.Spec.Analysis.Threshold
	if threshold == 0 {
		threshold = 1
	}
	return []string{
		c.Namespace, c.Name, phase,
		strconv.Itoa(c.Status.CanaryWeight),
		fmt.Sprintf("%d/%d", c.Status.FailedChecks, threshold),
		step(c),
		age(c.CreationTimestamp.Time, now),
	}
}

// step is how far the release went through its schedule: weight steps
// taken of a canary release, iterations of blue/green and A/B.
func step(c *serinv1.Canary) string {
	switch c.Status.Phase {
	case "", serinv1.CanaryPhaseInitializing, serinv1.CanaryPhaseInitialized:
		return "-"
	}
	total := c.Spec.Analysis.Iterations
	if s := analysis.Schedule(c.Spec.Analysis); s != nil {
		total = len(s)
	}
	return fmt.Sprintf("%d/%d", c.Status.Iterations, total)
}
