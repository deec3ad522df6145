package main

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/serin-dev/serin/pkg/analysis"
	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
)

func newUndoCommand(k *kube) *cobra.Command {
	var (
		w        waitFlags
		revision int64
	)
	cmd := &cobra.Command{
		Use:   "undo NAME",
		Short: "Roll the primary back to a kept revision",
		Long: `Roll the primary back to a revision it ran before, kept by the controller
as a ControllerRevision (spec.revisionHistoryLimit of them, default 3): its
pod template and the content of its config copies. No analysis runs, as in
a rollback. Without --to-revision, the newest kept revision the primary does
not run is restored. The target keeps its spec: its next change starts an
analysis as usual. Only when no release is in flight.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pick := func(ctx context.Context, c client.Client, canary *serinv1.Canary) (map[string]string, error) {
				rev, err := keptRevision(ctx, c, canary, revision)
				if err != nil {
					return nil, err
				}
				return map[string]string{serinv1.OperationRevisionAnnotation: rev}, nil
			}
			return requestOperationWith(cmd.Context(), k, cmd.OutOrStdout(), args[0], analysis.OperationUndo, pick, w)
		},
	}
	cmd.Flags().Int64Var(&revision, "to-revision", 0, "the number of the kept revision to restore (0: the newest one the primary does not run)")
	w.add(cmd)
	return cmd
}

// keptRevision returns the revision hash of kept revision number, or of the
// newest kept revision the primary does not run when number is 0.
func keptRevision(ctx context.Context, c client.Client, canary *serinv1.Canary, number int64) (string, error) {
	var list appsv1.ControllerRevisionList
	if err := c.List(ctx, &list, client.InNamespace(canary.Namespace), client.MatchingLabels{serinv1.KeptRevisionLabel: canary.Name}); err != nil {
		return "", fmt.Errorf("listing the kept revisions of canary %s/%s: %w", canary.Namespace, canary.Name, err)
	}
	kept := slices.DeleteFunc(list.Items, func(cr appsv1.ControllerRevision) bool { return !metav1.IsControlledBy(&cr, canary) })
	slices.SortFunc(kept, func(a, b appsv1.ControllerRevision) int { return cmp.Compare(b.Revision, a.Revision) })
	var numbers []string
	for _, cr := range kept {
		rev := cr.Annotations[serinv1.RevisionAnnotation]
		if number == cr.Revision || number == 0 && rev != canary.Status.LastPromotedSpec {
			return rev, nil
		}
		numbers = append(numbers, fmt.Sprint(cr.Revision))
	}
	if number == 0 {
		return "", fmt.Errorf("canary %s/%s has no kept revision to go back to", canary.Namespace, canary.Name)
	}
	return "", fmt.Errorf("canary %s/%s has no kept revision %d (kept: %s)", canary.Namespace, canary.Name, number, orNone(strings.Join(numbers, ", ")))
}
