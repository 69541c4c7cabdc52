package classify

import (
	"errors"
	"math"
	"testing"
)

func TestScore(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		// Reference: scikit-learn 1.2.1.
		//   from sklearn.metrics import *
		//   yt=[0,0,0,1,1,1,1,2,2,2,3,3,0,1,2,0,1,1,2,0]
		//   yp=[0,1,0,1,1,2,1,2,0,2,0,1,0,1,1,0,2,1,2,1]
		//   L=[0,1,2,3]
		//   accuracy_score(yt,yp)
		//   precision_recall_fscore_support(yt,yp,labels=L,zero_division=0)
		//   f1_score(yt,yp,labels=L,average='macro',zero_division=0)   # also precision_, recall_, 'weighted'
		//   confusion_matrix(yt,yp,labels=L)
		// Class 3 is never predicted: its precision is 0/0 -> 0.
		yt := []int{0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 3, 3, 0, 1, 2, 0, 1, 1, 2, 0}
		yp := []int{0, 1, 0, 1, 1, 2, 1, 2, 0, 2, 0, 1, 0, 1, 1, 0, 2, 1, 2, 1}
		got, err := Score(yt, yp, []string{"a", "b", "c", "d"})
		if err != nil {
			t.Fatal(err)
		}
		// sklearn >= 1.3 computes F1 as 2tp/(2tp+fp+fn), as we do; 1.2.1
		// used 2PR/(P+R), one ulp off for class b (0.6250000000000001).
		const tol = 1e-15
		near := func(name string, got, want float64) {
			t.Helper()
			if math.Abs(got-want) > tol {
				t.Errorf("%s = %.17g, want %.17g", name, got, want)
			}
		}
		near("accuracy", got.Accuracy, 0.6)
		wantP := []float64{0.6666666666666666, 0.5555555555555556, 0.6, 0.0}
		wantR := []float64{0.6666666666666666, 0.7142857142857143, 0.6, 0.0}
		wantF := []float64{0.6666666666666666, 0.6250000000000001, 0.6, 0.0}
		wantS := []int{6, 7, 5, 2}
		for c, pc := range got.PerClass {
			near("precision "+pc.Class, pc.Precision, wantP[c])
			near("recall "+pc.Class, pc.Recall, wantR[c])
			near("f1 "+pc.Class, pc.F1, wantF[c])
			if pc.Support != wantS[c] {
				t.Errorf("support %s = %d, want %d", pc.Class, pc.Support, wantS[c])
			}
		}
		near("macro f1", got.MacroF1, 0.47291666666666665)
		near("macro precision", got.MacroPrecision, 0.4555555555555556)
		near("macro recall", got.MacroRecall, 0.49523809523809526)
		near("weighted f1", got.WeightedF1, 0.56875)
		wantCM := [][]int{{4, 2, 0, 0}, {0, 5, 2, 0}, {1, 1, 3, 0}, {1, 1, 0, 0}}
		for r := range wantCM {
			for c := range wantCM[r] {
				if got.Confusion[r][c] != wantCM[r][c] {
					t.Errorf("confusion[%d][%d] = %d, want %d", r, c, got.Confusion[r][c], wantCM[r][c])
				}
			}
		}
	})
	t.Run("AbsentClass", func(t *testing.T) {
		// Hand-computed: class z appears nowhere, so P = R = F1 = 0 and it
		// pulls the macro F1 down to (1 + 1 + 0)/3.
		got, err := Score([]int{0, 1, 1}, []int{0, 1, 1}, []string{"x", "y", "z"})
		if err != nil {
			t.Fatal(err)
		}
		if got.Accuracy != 1 || got.PerClass[2].F1 != 0 || got.PerClass[2].Precision != 0 || got.PerClass[2].Recall != 0 {
			t.Errorf("got %+v", got)
		}
		if want := 2.0 / 3; math.Abs(got.MacroF1-want) > 1e-15 {
			t.Errorf("macro F1 = %v, want %v", got.MacroF1, want)
		}
	})
	t.Run("ErrBadData", func(t *testing.T) {
		if _, err := Score([]int{0, 1}, []int{0}, []string{"x", "y"}); !errors.Is(err, ErrBadData) {
			t.Errorf("length mismatch: err = %v, want ErrBadData", err)
		}
		if _, err := Score([]int{0, 2}, []int{0, 1}, []string{"x", "y"}); !errors.Is(err, ErrBadData) {
			t.Errorf("label out of range: err = %v, want ErrBadData", err)
		}
	})
}
