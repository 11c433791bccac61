"""saldissect: what do deep saliency models learn about visual attention?

Factorise a saliency model's features into bases, align the bases with
semantics on an annotated probe set, and measure each semantic's contribution
to predicted saliency (Chen, Jiang and Zhao, NeurIPS 2023).
"""

__version__ = "0.1.0"
