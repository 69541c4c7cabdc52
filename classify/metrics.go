package classify

import "fmt"

// ClassMetrics are the one-vs-rest scores of one class.
type ClassMetrics struct {
	Class     string  `json:"class"`
	Precision float64 `json:"precision"`
	Recall    float64 `json:"recall"`
	F1        float64 `json:"f1"`
	Support   int     `json:"support"` // true samples of the class
}

// Metrics scores predictions with sklearn's definitions: accuracy_score,
// precision_recall_fscore_support with labels = all classes and
// zero_division=0 (a 0/0 ratio is 0), macro averages over all classes
// (classes absent from both truth and predictions count as 0, as sklearn
// with explicit labels), confusion_matrix (rows true, columns predicted).
type Metrics struct {
	N              int            `json:"n"`
	Accuracy       float64        `json:"accuracy"`
	MacroPrecision float64        `json:"macro_precision"`
	MacroRecall    float64        `json:"macro_recall"`
	MacroF1        float64        `json:"macro_f1"`
	WeightedF1     float64        `json:"weighted_f1"` // F1 averaged with support weights
	PerClass       []ClassMetrics `json:"per_class"`
	Confusion      [][]int        `json:"confusion"`
}

// Score compares true and predicted class indices.
func Score(yTrue, yPred []int, classes []string) (*Metrics, error) {
	k := len(classes)
	if len(yTrue) != len(yPred) {
		return nil, fmt.Errorf("score: %d true labels, %d predictions: %w", len(yTrue), len(yPred), ErrBadData)
	}
	if len(yTrue) == 0 {
		return nil, fmt.Errorf("score: no samples: %w", ErrBadData)
	}
	m := &Metrics{N: len(yTrue), Confusion: make([][]int, k), PerClass: make([]ClassMetrics, k)}
	for i := range m.Confusion {
		m.Confusion[i] = make([]int, k)
	}
	correct := 0
	for i, t := range yTrue {
		p := yPred[i]
		if t < 0 || t >= k || p < 0 || p >= k {
			return nil, fmt.Errorf("score: sample %d has labels %d/%d outside [0,%d): %w", i, t, p, k, ErrBadData)
		}
		m.Confusion[t][p]++
		if t == p {
			correct++
		}
	}
	m.Accuracy = float64(correct) / float64(len(yTrue))
	ratio := func(a, b int) float64 {
		if b == 0 {
			return 0
		}
		return float64(a) / float64(b)
	}
	for c := 0; c < k; c++ {
		tp, predicted, support := m.Confusion[c][c], 0, 0
		for o := 0; o < k; o++ {
			predicted += m.Confusion[o][c]
			support += m.Confusion[c][o]
		}
		fp, fn := predicted-tp, support-tp
		cm := ClassMetrics{
			Class:     classes[c],
			Precision: ratio(tp, predicted),
			Recall:    ratio(tp, support),
			F1:        ratio(2*tp, 2*tp+fp+fn),
			Support:   support,
		}
		m.PerClass[c] = cm
		m.MacroPrecision += cm.Precision
		m.MacroRecall += cm.Recall
		m.MacroF1 += cm.F1
		m.WeightedF1 += cm.F1 * float64(support)
	}
	// Sum, then divide, as numpy's mean and average do.
	m.MacroPrecision /= float64(k)
	m.MacroRecall /= float64(k)
	m.MacroF1 /= float64(k)
	m.WeightedF1 /= float64(len(yTrue))
	return m, nil
}
