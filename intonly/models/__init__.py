"""Float PyTorch models the toolkit ships and lowers: a ViT/DeiT with timm parameter names and a BERT
encoder with Hugging Face parameter names (MiniLM-L6). Their attention modules follow the protocol in
:mod:`intonly.models.attention`, which is what the lowering recognises."""
