// Package keras reads (and, for test fixtures, writes) Keras 2 HDF5
// weights files through libhdf5, recognises the Keras applications'
// networks in them (VGG16, VGG19, ResNet50 in both Keras namings) from
// their layer names and weight shapes, and converts them to ONNX graphs
// that the extract engines run. Forward is an independent float64
// channels_last implementation of the same Keras layers, the reference the
// tests compare the converted graphs against. See extract/DESIGN.md.
package keras
