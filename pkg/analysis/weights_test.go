package analysis

import (
	"slices"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"

	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
)

func TestWeightSchedules(t *testing.T) {
	tests := []struct {
		name     string
		analysis serinv1.CanaryAnalysis
		want     []int // the weights visited from 0 until maxWeight
	}{
		{"stepWeight to the default maxWeight", serinv1.CanaryAnalysis{StepWeight: 25}, []int{25, 50, 75, 100}},
		{"stepWeight up to maxWeight", serinv1.CanaryAnalysis{StepWeight: 10, MaxWeight: 30}, []int{10, 20, 30}},
		{"stepWeight not dividing maxWeight stops at maxWeight", serinv1.CanaryAnalysis{StepWeight: 20, MaxWeight: 50}, []int{20, 40, 50}},
		{"stepWeight equal to maxWeight", serinv1.CanaryAnalysis{StepWeight: 50, MaxWeight: 50}, []int{50}},
		{"stepWeights", serinv1.CanaryAnalysis{StepWeights: []int{1, 5, 10, 50, 80}}, []int{1, 5, 10, 50, 80}},
		{"stepWeights ignore maxWeight", serinv1.CanaryAnalysis{StepWeights: []int{10, 20}, MaxWeight: 90}, []int{10, 20}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []int
			for w := 0; w < MaxWeight(tt.analysis) && len(got) < 200; {
				w = NextWeight(tt.analysis, w)
				got = append(got, w)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("weights %v, want %v", got, tt.want)
			}
			if s := Schedule(tt.analysis); !slices.Equal(s, tt.want) {
				t.Errorf("Schedule %v, want %v", s, tt.want)
			}
		})
	}
	if s := Schedule(serinv1.CanaryAnalysis{Iterations: 5}); s != nil {
		t.Errorf("a blue/green release has the weight schedule %v", s)
	}
}

func TestPromotionWeight(t *testing.T) {
	tests := []struct {
		name    string
		step    int
		current int
		want    int
	}{
		{"without stepWeightPromotion all at once", 0, 50, 0},
		{"one step", 20, 50, 30},
		{"last step floors at zero", 20, 10, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := PromotionWeight(serinv1.CanaryAnalysis{StepWeightPromotion: tt.step}, tt.current); got != tt.want {
				t.Errorf("PromotionWeight = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestStrategyOf(t *testing.T) {
	match := []apiextensionsv1.JSON{{Raw: []byte(`{"headers":{"x-canary":{"exact":"1"}}}`)}}
	tests := []struct {
		name     string
		analysis serinv1.CanaryAnalysis
		want     Strategy
	}{
		{"stepWeight", serinv1.CanaryAnalysis{StepWeight: 10}, StrategyCanary},
		{"stepWeights", serinv1.CanaryAnalysis{StepWeights: []int{10}}, StrategyCanary},
		{"iterations", serinv1.CanaryAnalysis{Iterations: 5}, StrategyBlueGreen},
		{"iterations with match", serinv1.CanaryAnalysis{Iterations: 5, Match: match}, StrategyABTesting},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := StrategyOf(tt.analysis); got != tt.want {
				t.Errorf("StrategyOf = %s, want %s", got, tt.want)
			}
		})
	}
}
