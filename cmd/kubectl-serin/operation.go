package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/serin-dev/serin/pkg/analysis"
	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
)

// conflictRetries bounds how often a request is rebuilt after another
// writer changed the Canary between the read and the patch.
const conflictRetries = 5

// requestOperation asks the controller for an operation on a Canary. It
// checks the phase first and refuses with the reason when the operation
// does not apply, then writes the operation annotations with a merge patch.
// The patch carries the resourceVersion it was decided on, so two on-call
// engineers cannot overwrite each other's request unseen: an abort that is
// still pending is never replaced by a promote.
func requestOperation(ctx context.Context, k *kube, out io.Writer, name string, op analysis.OperationKind, w waitFlags) error {
	return requestOperationWith(ctx, k, out, name, op, nil, w)
}

// requestOperationWith is requestOperation with the annotations an
// operation needs besides its kind (an undo's revision), chosen from the
// Canary as read right before the patch.
func requestOperationWith(ctx context.Context, k *kube, out io.Writer, name string, op analysis.OperationKind, extra func(context.Context, client.Client, *serinv1.Canary) (map[string]string, error), w waitFlags) error {
	c, ns, err := k.client()
	if err != nil {
		return err
	}
	by := whoAmI(ctx, c)
	for range conflictRetries {
		canary, err := getCanary(ctx, c, ns, name)
		if err != nil {
			return err
		}
		if why := analysis.Refusal(canary.Spec, canary.Status, op); why != "" {
			return fmt.Errorf("cannot %s canary %s/%s (phase %s): %s", op, ns, name, canary.Status.Phase, why)
		}
		if pending := analysis.PendingOperation(canary); pending != nil && !analysis.Replaces(op, pending.Kind) {
			return fmt.Errorf("cannot %s canary %s/%s: the %s requested at %s is not handled yet", op, ns, name, pending.Kind, pending.ID)
		}
		id := time.Now().UTC().Format(time.RFC3339Nano)
		annotations := map[string]any{
			serinv1.OperationAnnotation:         string(op),
			serinv1.OperationIDAnnotation:       id,
			serinv1.OperationByAnnotation:       nil,
			serinv1.OperationRevisionAnnotation: nil,
		}
		if extra != nil {
			more, err := extra(ctx, c, canary)
			if err != nil {
				return err
			}
			for k, v := range more {
				annotations[k] = v
			}
		}
		if by != "" {
			annotations[serinv1.OperationByAnnotation] = by
		}
		patch, err := json.Marshal(map[string]any{"metadata": map[string]any{
			"resourceVersion": canary.ResourceVersion,
			"annotations":     annotations,
		}})
		if err != nil {
			return err
		}
		err = c.Patch(ctx, canary, client.RawPatch(types.MergePatchType, patch))
		if apierrors.IsConflict(err) {
			continue
		}
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(out, "%s requested for canary %s/%s (operation-id %s)\n", op, ns, name, id); err != nil || !w.wait {
			return err
		}
		return waitHandled(ctx, c, out, canary, id, w.timeout)
	}
	return fmt.Errorf("canary %s/%s kept changing: try again", ns, name)
}

// waitFlags tell an operation command to wait for the controller's answer.
type waitFlags struct {
	wait    bool
	timeout time.Duration
}

func (w *waitFlags) add(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&w.wait, "wait", false, "wait until the controller handled the request, and fail if it refused it")
	cmd.Flags().DurationVar(&w.timeout, "timeout", time.Minute, "how long --wait waits")
}

// waitPoll is how often --wait reads the Canary.
const waitPoll = 500 * time.Millisecond

// waitHandled waits until the controller recorded the request as handled
// and reports its Events: the refusal as an error (the controller refuses
// what the client cannot see, such as a canary that is not ready), or what
// it did.
func waitHandled(ctx context.Context, c client.Client, out io.Writer, canary *serinv1.Canary, id string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		current, err := getCanary(ctx, c, canary.Namespace, canary.Name)
		if err != nil && ctx.Err() == nil {
			return err
		}
		if err == nil && current.Status.LastHandledOperation == id {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the controller did not handle the request within %s: is it running, and is the Canary suspended?", timeout)
		case <-time.After(waitPoll):
		}
	}
	events, err := canaryEvents(ctx, c, canary)
	if err != nil {
		return err
	}
	for _, e := range events {
		if !strings.Contains(e.Message, "(request "+id+")") {
			continue
		}
		if e.Reason == analysis.ReasonOperationRefused {
			return errors.New(e.Message)
		}
		if _, err := fmt.Fprintln(out, e.Message); err != nil {
			return err
		}
	}
	return nil
}
