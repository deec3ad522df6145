package v1beta1

import "testing"

func TestCanaryThresholdRangeString(t *testing.T) {
	for _, tt := range []struct {
		r    *CanaryThresholdRange
		want string
	}{
		{nil, ""},
		{&CanaryThresholdRange{}, ""},
		{&CanaryThresholdRange{Min: new(99.0)}, ">= 99"},
		{&CanaryThresholdRange{Max: new(500.0)}, "<= 500"},
		{&CanaryThresholdRange{Min: new(0.5), Max: new(1.5)}, ">= 0.5 and <= 1.5"},
	} {
		if got := tt.r.String(); got != tt.want {
			t.Errorf("%+v.String() = %q, want %q", tt.r, got, tt.want)
		}
	}
}
