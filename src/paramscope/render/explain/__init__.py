"""`explain`: each weighted layer's formula, checked against its tensors, then the answer."""
