"""Train an S4D model on sequential digits: each 8x8 handwritten digit read pixel by pixel (L = 64).

The data (1,797 images, 10 classes) ships with scikit-learn, so this runs offline in about a
minute on a laptop CPU and prints the test accuracy.

    python examples/train_digits.py --epochs 30 --layer s4d

It prints its plan first, then progress (a tqdm bar on a terminal, plain lines with the rate and
the time left otherwise). The model is small, so it runs on one thread unless told otherwise
(``--threads N`` or ``OMP_NUM_THREADS``): on a busy 2-core machine an epoch took 7 s on one
thread and 37 s on torch's default of one thread per core, which the other jobs also wanted.
"""

import argparse
import time

import torch
import torch.nn.functional as F

import _cli
import seqlayers


def load(seed: int):
    """Train and test splits: pixels ``(N, 64, 1)`` float32 in [0, 1] and labels ``(N,)``."""
    try:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
    except ImportError as err:
        raise _cli.UserError("this example needs scikit-learn: pip install -e '.[examples]'") from err
    digits = load_digits()
    x = torch.tensor(digits.images, dtype=torch.float32).reshape(-1, 64, 1) / 16.0  # (N, L, 1)
    y = torch.tensor(digits.target)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.2, random_state=seed, stratify=y)
    return (x_tr, y_tr), (x_te, y_te)


@torch.no_grad()
def accuracy(model, x, y):
    model.eval()
    return (model(x).argmax(-1) == y).float().mean().item()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--layer", default="s4d", choices=sorted(seqlayers.layers.LAYERS), help="layer family")
    parser.add_argument("--epochs", type=int, default=30, help="passes over the training set")
    parser.add_argument("--d-model", type=int, default=64, help="features per position")
    parser.add_argument("--n-layers", type=int, default=3, help="residual blocks")
    parser.add_argument("--batch-size", type=int, default=64, help="examples per step")
    parser.add_argument("--lr", type=float, default=1e-2, help="peak learning rate (one-cycle schedule)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split, the model and the data order")
    _cli.add_common_flags(parser)
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error(f"--epochs must be >= 1, got {args.epochs}")
    # small ops: one thread is fastest, and leaves the other cores to other work
    threads = _cli.set_threads(args.threads, configured=1, configured_why="a small model runs fastest on one")

    torch.manual_seed(args.seed)
    (x_tr, y_tr), (x_te, y_te) = load(args.seed)
    layer_kwargs = {"l_max": 64} if args.layer in ("sgconv", "longconv") else {}
    model = seqlayers.SequenceModel(
        1, 10, args.d_model, args.n_layers, layer=args.layer, dropout=0.1, layer_kwargs=layer_kwargs
    )
    opt = torch.optim.AdamW(seqlayers.optim.param_groups(model, lr=args.lr, weight_decay=0.05))
    per_epoch = (len(x_tr) + args.batch_size - 1) // args.batch_size
    steps = args.epochs * per_epoch
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=[g["lr"] for g in opt.param_groups], total_steps=steps, pct_start=0.1
    )
    params = sum(p.numel() for p in model.parameters())
    print(f"plan: {len(x_tr)} training / {len(x_te)} test digits (L = 64); {args.layer}, {args.n_layers} layers "
          f"x d_model {args.d_model} ({params:,} parameters); {args.epochs} epochs x {per_epoch} steps = {steps} "
          f"steps; {threads}", flush=True)
    bar = _cli.Progress(steps, "train")
    start = time.time()
    for epoch in range(args.epochs):
        model.train()
        for idx in torch.randperm(len(x_tr)).split(args.batch_size):
            loss = F.cross_entropy(model(x_tr[idx]), y_tr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            bar.update(loss=f"{loss.item():.3f}")
        if (epoch + 1) % 10 == 0 or epoch + 1 == args.epochs:
            bar.write(f"epoch {epoch + 1:3d}  loss {loss.item():.3f}  test acc {accuracy(model, x_te, y_te):.4f}")
    bar.close()
    print(
        f"{args.layer}: test accuracy {accuracy(model, x_te, y_te):.4f} "
        f"({params:,} parameters, {time.time() - start:.0f} s)"
    )


if __name__ == "__main__":
    _cli.run(main)
