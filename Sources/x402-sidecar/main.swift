print("x402-sidecar")
