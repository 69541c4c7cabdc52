package testutil

import "math"

// RelErr is max|got-want| / max|want|: the error relative to the scale of
// the tensor, which element-wise ratios would blow up near zero. With an
// all-zero want it is max|got-want|.
func RelErr[T float32 | float64](got []T, want []float64) float64 {
	var num, den float64
	for i := range want {
		num = math.Max(num, math.Abs(float64(got[i])-want[i]))
		den = math.Max(den, math.Abs(want[i]))
	}
	if den == 0 {
		return num
	}
	return num / den
}

// Cosine is the cosine of the angle between a and b, in float64 whatever
// the element type.
func Cosine[T float32 | float64](a, b []T) float64 {
	var dot, na, nb float64
	for i := range a {
		x, y := float64(a[i]), float64(b[i])
		dot += x * y
		na += x * x
		nb += y * y
	}
	return dot / math.Sqrt(na*nb)
}

// CosineDistance is 1 - Cosine(a, b), the distance sqlite-vec and
// `pipeline similar` rank by.
func CosineDistance[T float32 | float64](a, b []T) float64 { return 1 - Cosine(a, b) }
