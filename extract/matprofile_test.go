//go:build matprofile

package extract

import (
	"io"

	"gocv.io/x/gocv"
)

func openMats() (int, func(io.Writer)) {
	return gocv.MatProfile.Count(), func(w io.Writer) { gocv.MatProfile.WriteTo(w, 1) }
}
