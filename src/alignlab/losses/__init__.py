"""Pure loss functions: tensors in, tensors out; no model, optimizer, config or I/O."""
