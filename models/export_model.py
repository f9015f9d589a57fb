#!/usr/bin/python3
"""Exports Sotto's example classifiers as TorchScript files that sotto-client, sotto-aggregator and sotto-sim load
(`model.torchscript = "FILE"`), and evaluates such a file in PyTorch.

  export_model.py export MODEL FILE [--seed N] [--trace]   writes MODEL, initialised from seed N, to FILE
  export_model.py evaluate FILE [--examples N]             mean cross-entropy and accuracy on Fashion-MNIST's test set
  export_model.py export-without-forward FILE              a TorchScript module without forward(), for Sotto's tests

Every model takes normalised images [batch, 1, 28, 28] (float32; pixel / 255, minus 0.2860, over 0.3530) and returns
logits [batch, 10]. --trace saves with torch.jit.trace instead of torch.jit.script, which Sotto refuses for models
whose behaviour depends on train/eval mode; it exists to show that refusal.
"""
import argparse
import gzip
import os
import struct
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

PIXEL_MEAN = 0.2860
PIXEL_STD = 0.3530


class FashionCnn(nn.Module):
    """The built-in fashion_cnn, layer for layer (same names and shapes): its weights move between the two."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 5)
        self.bn1 = nn.BatchNorm2d(16)
        self.conv2 = nn.Conv2d(16, 32, 5)
        self.bn2 = nn.BatchNorm2d(32)
        self.fc1 = nn.Linear(32 * 4 * 4, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
        x = F.max_pool2d(F.relu(self.bn2(self.conv2(x))), 2)
        x = F.relu(self.fc1(x.flatten(1)))
        return self.fc2(x)


class FashionMlp(nn.Module):
    """A body and a classifier head with dropout between them: the shape personal-head methods (FedPer, FedRep)
    split, and a module whose training and evaluation differ."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 200), nn.ReLU(), nn.Linear(200, 100), nn.ReLU())
        self.dropout = nn.Dropout(0.2)
        self.head = nn.Linear(100, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.body(x)))


class WithoutForward(torch.jit.ScriptModule):
    """A TorchScript module that has a method but no forward(): Sotto refuses to train it."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 2)

    @torch.jit.script_method
    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


MODELS = {"fashion_cnn": FashionCnn, "fashion_mlp": FashionMlp}


def export(name, path, seed, trace):
    torch.manual_seed(seed)
    model = MODELS[name]()
    if trace:
        scripted = torch.jit.trace(model, torch.zeros(2, 1, 28, 28), check_trace=False)
    else:
        scripted = torch.jit.script(model)
    scripted.save(path)


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic, count = struct.unpack(">II", data[:8])
    if magic == 0x803:
        rows, cols = struct.unpack(">II", data[8:16])
        return torch.frombuffer(bytearray(data[16:]), dtype=torch.uint8).reshape(count, 1, rows, cols)
    return torch.frombuffer(bytearray(data[8:]), dtype=torch.uint8).long()


def evaluate(path, examples, data_dir):
    model = torch.jit.load(path)
    model.eval()
    images = read_idx(os.path.join(data_dir, "t10k-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(data_dir, "t10k-labels-idx1-ubyte.gz"))
    if examples:
        images, labels = images[:examples], labels[:examples]
    x = (images.float() / 255.0 - PIXEL_MEAN) / PIXEL_STD
    with torch.no_grad():
        logits = model(x)
    loss = F.cross_entropy(logits, labels, reduction="sum").item() / len(labels)
    accuracy = (logits.argmax(1) == labels).float().mean().item()
    print(f"{loss:.9g} {accuracy:.9g}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    ex = sub.add_parser("export")
    ex.add_argument("model", choices=sorted(MODELS))
    ex.add_argument("file")
    ex.add_argument("--seed", type=int, default=1)
    ex.add_argument("--trace", action="store_true")
    ev = sub.add_parser("evaluate")
    ev.add_argument("file")
    ev.add_argument("--examples", type=int, default=0)
    ev.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
    nf = sub.add_parser("export-without-forward")
    nf.add_argument("file")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.command == "export":
        export(args.model, args.file, args.seed, args.trace)
    elif args.command == "export-without-forward":
        WithoutForward().save(args.file)
    else:
        evaluate(args.file, args.examples, args.data_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
