package analysis

import (
	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
)

// Strategy is how a release exposes the canary, derived from the analysis
// as in Flagger.
type Strategy string

const (
	// StrategyCanary shifts a growing share of traffic to the canary
	// (stepWeight or stepWeights).
	StrategyCanary Strategy = "Canary"
	// StrategyBlueGreen tests the canary for a number of iterations without
	// production traffic, then switches all traffic at once.
	StrategyBlueGreen Strategy = "BlueGreen"
	// StrategyABTesting routes requests matching analysis.match to the
	// canary for a number of iterations.
	StrategyABTesting Strategy = "ABTesting"
)

// StrategyOf returns the release strategy of an analysis.
func StrategyOf(a serinv1.CanaryAnalysis) Strategy {
	switch {
	case a.StepWeight > 0 || len(a.StepWeights) > 0:
		return StrategyCanary
	case len(a.Match) > 0:
		return StrategyABTesting
	default:
		return StrategyBlueGreen
	}
}

// MaxWeight is the highest canary weight of a canary release: the last of
// stepWeights, else maxWeight, else 100.
func MaxWeight(a serinv1.CanaryAnalysis) int {
	if n := len(a.StepWeights); n > 0 {
		return a.StepWeights[n-1]
	}
	if a.MaxWeight > 0 {
		return a.MaxWeight
	}
	return 100
}

// NextWeight is the canary weight of the step after current.
func NextWeight(a serinv1.CanaryAnalysis, current int) int {
	if len(a.StepWeights) > 0 {
		for _, w := range a.StepWeights {
			if w > current {
				return w
			}
		}
		return MaxWeight(a)
	}
	return min(current+a.StepWeight, MaxWeight(a))
}

// PromotionWeight is the canary weight after one promotion step from
// current: with stepWeightPromotion traffic returns to the (promoted)
// primary gradually, otherwise all at once.
func PromotionWeight(a serinv1.CanaryAnalysis, current int) int {
	if a.StepWeightPromotion <= 0 {
		return 0
	}
	return max(current-a.StepWeightPromotion, 0)
}

// Schedule lists the canary weights of a canary release in order, up to
// MaxWeight; blue/green and A/B releases have none.
func Schedule(a serinv1.CanaryAnalysis) []int {
	if StrategyOf(a) != StrategyCanary {
		return nil
	}
	var weights []int
	for w := 0; w < MaxWeight(a); {
		w = NextWeight(a, w)
		weights = append(weights, w)
	}
	return weights
}
