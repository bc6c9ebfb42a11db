"""Step-by-step generation with S4D: O(1) work per token, same outputs as the convolution.

A small causal S4D model is trained for a few steps to continue a sine wave, then generates
autoregressively with `step`, one sample at a time, from a constant-size recurrent state. The
script checks that stepping through a prompt reproduces `forward` on it.

    python examples/generate.py
"""

import math

import torch
from torch import nn

import seqlayers


class Generator(nn.Module):
    def __init__(self, d_model: int = 32, n_layers: int = 2):
        super().__init__()
        self.encoder = nn.Linear(1, d_model)
        self.layers = nn.ModuleList(seqlayers.S4D(d_model, d_state=32) for _ in range(n_layers))
        self.decoder = nn.Linear(d_model, 1)

    def forward(self, x):  # (B, L, 1) -> (B, L, 1): next-value prediction
        h = self.encoder(x)
        for layer in self.layers:
            h = h + layer(h)
        return self.decoder(h)

    def default_state(self, batch):
        return [layer.default_state(batch) for layer in self.layers]

    def step(self, x_t, states):  # (B, 1) -> (B, 1)
        h = self.encoder(x_t)
        new_states = []
        for layer, state in zip(self.layers, states):
            y, state = layer.step(h, state)
            h = h + y
            new_states.append(state)
        return self.decoder(h), new_states


def sine_batch(batch, length):
    phase = torch.rand(batch, 1) * 2 * math.pi
    t = torch.arange(length + 1) * 0.1
    return torch.sin(t + phase).unsqueeze(-1)  # (B, L + 1, 1)


def main():
    torch.manual_seed(0)
    model = Generator()
    opt = torch.optim.AdamW(seqlayers.optim.param_groups(model, lr=3e-3, weight_decay=0.0))
    for it in range(200):
        seq = sine_batch(16, 128)
        loss = nn.functional.mse_loss(model(seq[:, :-1]), seq[:, 1:])
        opt.zero_grad()
        loss.backward()
        opt.step()
    print(f"training loss after 200 steps: {loss.item():.5f}")

    model.eval()
    with torch.no_grad():
        prompt = sine_batch(1, 64)[:, :-1]
        states = model.default_state(1)
        outputs = []
        for t in range(prompt.shape[1]):
            y_t, states = model.step(prompt[:, t], states)
            outputs.append(y_t)
        stepped = torch.stack(outputs, 1)
        print(f"step vs forward on the prompt: max |diff| = {(stepped - model(prompt)).abs().max():.2e}")

        generated, x_t = [], outputs[-1]
        for _ in range(32):
            generated.append(x_t)
            x_t, states = model.step(x_t, states)
        values = torch.cat(generated, 1).squeeze()
        print("generated continuation:", " ".join(f"{v:+.2f}" for v in values[:12].tolist()), "...")


if __name__ == "__main__":
    main()
