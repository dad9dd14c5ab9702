package safetensors_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/bidora/bidora/safetensors"
)

// Write two tensors (one converted to BF16 on the way) with metadata, then open the
// file and read them back as float32.
func Example() {
	dir, err := os.MkdirTemp("", "safetensors-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "weights.safetensors")

	w, err := safetensors.NewTensor("w", safetensors.F32, []int{2, 3}, []float32{1, 2, 3, 4, 5, 6})
	if err != nil {
		log.Fatal(err)
	}
	b, err := safetensors.NewTensor("b", safetensors.BF16, []int{2}, []float32{0.5, 1.0 / 3})
	if err != nil {
		log.Fatal(err)
	}
	if err := safetensors.WriteFile(path, []safetensors.Tensor{w, b}, map[string]string{"format": "pt"}); err != nil {
		log.Fatal(err)
	}

	f, err := safetensors.Open(path)
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	fmt.Println("metadata:", f.Metadata())
	for _, name := range f.Names() {
		info, _ := f.Info(name)
		// Float32 converts BF16 and F16; for an F32 tensor it is a view of the file.
		v, err := f.Float32(name)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(name, info.DType, info.Shape, info.NumBytes(), v)
	}
	// Output:
	// metadata: map[format:pt]
	// b BF16 [2] 4 [0.5 0.33398438]
	// w F32 [2 3] 24 [1 2 3 4 5 6]
}
