package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	"github.com/spf13/cobra"

	"github.com/serin-dev/serin/pkg/convert"
)

func newConvertCommand() *cobra.Command {
	var files []string
	var strict bool
	cmd := &cobra.Command{
		Use:   "convert [-f FILE|DIR|-]...",
		Short: "Convert Flagger and Argo Rollouts manifests to Serin",
		Long: `Convert Flagger (flagger.app/v1beta1) Canaries, MetricTemplates and
AlertProviders, and Argo Rollouts (argoproj.io/v1alpha1) Rollouts and
AnalysisTemplates, into Serin (serin.dev/v1beta1) manifests. A Rollout becomes
a Deployment and a Canary. Other objects are copied unchanged.

The Serin YAML goes to stdout. Every field that could not be converted as
written is reported on stderr as "warning: <Kind/name> <path>: <message>".
All inputs are converted together, so a Rollout finds the AnalysisTemplates
and Services of the other files.`,
		Example: `  kubectl serin convert -f rollout.yaml -f analysis.yaml > serin.yaml
  helm template my-app ./chart | kubectl serin convert --strict`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			in, err := readInputs(cmd.InOrStdin(), files)
			if err != nil {
				return err
			}
			out, warnings, err := convert.Convert(in)
			for _, w := range warnings {
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: %s\n", w)
			}
			if err != nil {
				return err
			}
			if _, err := cmd.OutOrStdout().Write(out); err != nil {
				return err
			}
			if strict && len(warnings) > 0 {
				return &exitError{code: 2, err: fmt.Errorf("%d warning(s) with --strict", len(warnings))}
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVarP(&files, "filename", "f", nil, `manifest file, directory of .yaml, .yml and .json files, or "-" for stdin (repeatable; default stdin)`)
	cmd.Flags().BoolVar(&strict, "strict", false, "exit with code 2 when there are warnings")
	return cmd
}

// readInputs concatenates the inputs as one YAML stream.
func readInputs(stdin io.Reader, names []string) ([]byte, error) {
	if len(names) == 0 {
		names = []string{"-"}
	}
	var docs [][]byte
	for _, name := range names {
		files, err := expand(name)
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			var b []byte
			if f == "-" {
				b, err = io.ReadAll(stdin)
			} else {
				b, err = os.ReadFile(f)
			}
			if err != nil {
				return nil, err
			}
			docs = append(docs, b)
		}
	}
	return bytes.Join(docs, []byte("\n---\n")), nil
}

// expand lists the manifests of a directory, like kubectl -f DIR.
func expand(name string) ([]string, error) {
	if name == "-" {
		return []string{name}, nil
	}
	info, err := os.Stat(name)
	if err != nil {
		return nil, err
	}
	if !info.IsDir() {
		return []string{name}, nil
	}
	entries, err := os.ReadDir(name)
	if err != nil {
		return nil, err
	}
	var files []string
	for _, e := range entries {
		if !e.IsDir() && slices.Contains([]string{".yaml", ".yml", ".json"}, filepath.Ext(e.Name())) {
			files = append(files, filepath.Join(name, e.Name()))
		}
	}
	return files, nil
}
