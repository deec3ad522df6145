package flags

import (
	"encoding/binary"
	"math/bits"
)

// bucketPrefix starts the string Serin's split hashes, so that the split
// does not line up with a flag's own fractional rules (which hash flag key
// + targeting key by default): with the same string, at 25% the whole new
// side would be in the first arm of any 50/50 experiment the flag runs.
const bucketPrefix = "serin/"

// bucketBy is the string the split of flagKey hashes for one targeting key;
// the rolled-out targeting builds the same string with
// {"cat": [bucketPrefix+flagKey+"/", {"var": "targetingKey"}]}.
func bucketBy(flagKey, targetingKey string) string {
	return bucketPrefix + flagKey + "/" + targetingKey
}

// Bucket is where the split of flagKey places a targeting key, in [0, 100):
// the MurmurHash3 (x86, 32 bit, seed 0) of the bucketing string, scaled as
// flagd scales it (hash * totalWeight >> 32, with total weight 100). The
// key is on the new side at weight w exactly when Bucket < w, so a key on
// the new side stays there as the weight grows.
//
// The hash is over the UTF-8 bytes, as flagd (Go) hashes; flagd-core for
// JavaScript hashes UTF-16 code units, which agrees for ASCII keys only.
func Bucket(flagKey, targetingKey string) float64 {
	h := murmur3([]byte(bucketBy(flagKey, targetingKey)))
	return float64(h) * 100 / (1 << 32)
}

// OnNewSide tells whether an evaluation context with this targeting key
// gets the new definition of flagKey in the document Rollout writes at
// weight. A context without a targeting key stays on the old side until
// weight 100.
func OnNewSide(flagKey, targetingKey string, weight int) bool {
	switch {
	case weight >= 100:
		return true
	case weight <= 0, targetingKey == "":
		return false
	}
	h := murmur3([]byte(bucketBy(flagKey, targetingKey)))
	return (uint64(h)*100)>>32 < uint64(weight)
}

// murmur3 is MurmurHash3 x86_32 with seed 0, the hash of flagd's
// fractional operator.
func murmur3(data []byte) uint32 {
	const (
		c1 = 0xcc9e2d51
		c2 = 0x1b873593
	)
	var h uint32
	n := len(data)
	for ; len(data) >= 4; data = data[4:] {
		k := binary.LittleEndian.Uint32(data)
		k *= c1
		k = bits.RotateLeft32(k, 15)
		k *= c2
		h ^= k
		h = bits.RotateLeft32(h, 13)
		h = h*5 + 0xe6546b64
	}
	var k uint32
	switch len(data) {
	case 3:
		k ^= uint32(data[2]) << 16
		fallthrough
	case 2:
		k ^= uint32(data[1]) << 8
		fallthrough
	case 1:
		k ^= uint32(data[0])
		k *= c1
		k = bits.RotateLeft32(k, 15)
		k *= c2
		h ^= k
	}
	h ^= uint32(n)
	h ^= h >> 16
	h *= 0x85ebca6b
	h ^= h >> 13
	h *= 0xc2b2ae35
	h ^= h >> 16
	return h
}
