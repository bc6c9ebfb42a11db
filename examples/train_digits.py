"""Train an S4D model on sequential digits: each 8x8 handwritten digit read pixel by pixel (L = 64).

The data (1,797 images, 10 classes) ships with scikit-learn, so this runs offline in about a
minute on a laptop CPU and prints the test accuracy.

    python examples/train_digits.py --epochs 30 --layer s4d
"""

import argparse
import time

import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import seqlayers


def load(seed: int):
    digits = load_digits()
    x = torch.tensor(digits.images, dtype=torch.float32).reshape(-1, 64, 1) / 16.0  # (N, L, 1)
    y = torch.tensor(digits.target)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.2, random_state=seed, stratify=y)
    return (x_tr, y_tr), (x_te, y_te)


@torch.no_grad()
def accuracy(model, x, y):
    model.eval()
    return (model(x).argmax(-1) == y).float().mean().item()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layer", default="s4d", choices=sorted(seqlayers.layers.LAYERS))
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--d-model", type=int, default=64)
    parser.add_argument("--n-layers", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    (x_tr, y_tr), (x_te, y_te) = load(args.seed)
    layer_kwargs = {"l_max": 64} if args.layer in ("sgconv", "longconv") else {}
    model = seqlayers.SequenceModel(
        1, 10, args.d_model, args.n_layers, layer=args.layer, dropout=0.1, layer_kwargs=layer_kwargs
    )
    opt = torch.optim.AdamW(seqlayers.optim.param_groups(model, lr=args.lr, weight_decay=0.05))
    steps = args.epochs * ((len(x_tr) + args.batch_size - 1) // args.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=[g["lr"] for g in opt.param_groups], total_steps=steps, pct_start=0.1
    )
    start = time.time()
    for epoch in range(args.epochs):
        model.train()
        for idx in torch.randperm(len(x_tr)).split(args.batch_size):
            loss = F.cross_entropy(model(x_tr[idx]), y_tr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        if (epoch + 1) % 10 == 0 or epoch + 1 == args.epochs:
            print(f"epoch {epoch + 1:3d}  loss {loss.item():.3f}  test acc {accuracy(model, x_te, y_te):.4f}")
    params = sum(p.numel() for p in model.parameters())
    print(
        f"{args.layer}: test accuracy {accuracy(model, x_te, y_te):.4f} "
        f"({params:,} parameters, {time.time() - start:.0f} s)"
    )


if __name__ == "__main__":
    main()
