// Command sampledata writes a small labeled image folder (4 classes of
// simple synthetic pictures) for the demo, when no real photos are at hand.
//
//	go run ./scripts/sampledata DIR [PER_CLASS]
package main

import (
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: sampledata DIR [PER_CLASS]")
		os.Exit(2)
	}
	n := 15
	if len(os.Args) > 2 {
		v, err := strconv.Atoi(os.Args[2])
		if err != nil || v < 1 {
			fmt.Fprintln(os.Stderr, "PER_CLASS must be a positive number")
			os.Exit(2)
		}
		n = v
	}
	classes := map[string]func(r *rand.Rand, x, y float64) color.RGBA{
		"circles": func(r *rand.Rand, x, y float64) color.RGBA {
			if math.Hypot(x-0.5, y-0.5) < 0.3 {
				return color.RGBA{200, 40, 40, 255}
			}
			return color.RGBA{230, 220, 200, 255}
		},
		"squares": func(r *rand.Rand, x, y float64) color.RGBA {
			if math.Abs(x-0.5) < 0.25 && math.Abs(y-0.5) < 0.25 {
				return color.RGBA{40, 60, 200, 255}
			}
			return color.RGBA{220, 230, 230, 255}
		},
		"stripes": func(r *rand.Rand, x, y float64) color.RGBA {
			if int(x*10)%2 == 0 {
				return color.RGBA{30, 160, 60, 255}
			}
			return color.RGBA{240, 240, 240, 255}
		},
		"noise": func(r *rand.Rand, x, y float64) color.RGBA {
			v := uint8(r.IntN(256))
			return color.RGBA{v, v, v, 255}
		},
	}
	for name, paint := range classes {
		dir := filepath.Join(os.Args[1], name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		for i := 0; i < n; i++ {
			r := rand.New(rand.NewPCG(uint64(i), uint64(len(name))))
			w, h := 120+r.IntN(80), 100+r.IntN(60)
			dx, dy := r.Float64()*0.2-0.1, r.Float64()*0.2-0.1
			img := image.NewRGBA(image.Rect(0, 0, w, h))
			for y := 0; y < h; y++ {
				for x := 0; x < w; x++ {
					c := paint(r, float64(x)/float64(w)+dx, float64(y)/float64(h)+dy)
					j := int8(r.IntN(31) - 15)
					c.R, c.G, c.B = clamp(int(c.R)+int(j)), clamp(int(c.G)+int(j)), clamp(int(c.B)+int(j))
					img.SetRGBA(x, y, c)
				}
			}
			f, err := os.Create(filepath.Join(dir, fmt.Sprintf("%s-%02d.jpg", name, i)))
			if err == nil {
				err = jpeg.Encode(f, img, &jpeg.Options{Quality: 90})
				if cerr := f.Close(); err == nil {
					err = cerr
				}
			}
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
		}
	}
}

func clamp(v int) uint8 { return uint8(max(0, min(255, v))) }
