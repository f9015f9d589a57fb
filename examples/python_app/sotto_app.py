#!/usr/bin/env python3
"""An app written in Python that takes part in Sotto's federated training through libsotto_client.so, with ctypes.

It binds the C API (client/include/sotto/sotto_client.h) by hand, trains the aggregator's "fashion_linear" model
(multinomial logistic regression on Fashion-MNIST's pixels) with its own SGD in plain Python on its own examples,
records the person's opt-in, takes part in rounds until training is finished, and prints its ledger.

    sotto_app.py LIBRARY CONFIG KEY_FILE DATA_DIR SHARD NUM_SHARDS MAX_EXAMPLES

LIBRARY is the path of libsotto_client.so; the other arguments are examples/c_app's.
"""
import ctypes as C
import gzip
import math
import os
import sys

PIXELS, CLASSES = 28 * 28, 10


class Tensor(C.Structure):
    _fields_ = [("name", C.c_char_p), ("data", C.POINTER(C.c_float)), ("count", C.c_size_t),
                ("shape", C.POINTER(C.c_int64)), ("rank", C.c_size_t)]


class Plan(C.Structure):
    _fields_ = [("epochs", C.c_uint32), ("batch_size", C.c_uint32), ("learning_rate", C.c_double),
                ("momentum", C.c_double), ("weight_decay", C.c_double), ("seed", C.c_uint64)]


class FitResult(C.Structure):
    _fields_ = [("num_examples", C.c_uint64), ("mean_loss", C.c_double), ("accuracy", C.c_double)]


class Options(C.Structure):
    _fields_ = [("config_file", C.c_char_p), ("state_key", C.POINTER(C.c_uint8)),
                ("state_min_generation", C.c_uint64)]


class RunSummary(C.Structure):
    _fields_ = [("finished", C.c_int), ("consent_revoked", C.c_int), ("rounds_contributed", C.c_uint64)]


class LedgerEntry(C.Structure):
    _fields_ = [("unix_time", C.c_double), ("round", C.c_uint64), ("outcome", C.c_char_p),
                ("examples", C.c_uint64), ("bytes_sent", C.c_uint64), ("bytes_received", C.c_uint64),
                ("train_loss", C.c_double), ("update_l2_norm", C.c_double), ("secure_aggregation", C.c_int),
                ("clip_norm", C.c_double), ("has_privacy", C.c_int), ("privacy_mode", C.c_char_p),
                ("noise_multiplier", C.c_double), ("epsilon", C.c_double), ("epsilon_stated", C.c_double)]


TRAIN_FN = C.CFUNCTYPE(C.c_int, C.c_void_p, C.POINTER(Tensor), C.c_size_t, C.POINTER(Plan), C.POINTER(FitResult))
SOTTO_OK, SOTTO_ERROR_TRAINING, SOTTO_CONSENT_TRAINING = 0, 6, 1


def bind(path):
    lib = C.CDLL(path)
    lib.sotto_last_error.restype = C.c_char_p
    lib.sotto_status_name.restype = C.c_char_p
    lib.sotto_client_create.argtypes = [C.POINTER(Options), TRAIN_FN, C.c_void_p, C.POINTER(C.c_void_p)]
    lib.sotto_client_set_consent.argtypes = [C.c_void_p, C.c_int, C.c_uint, C.c_int]
    lib.sotto_client_run.argtypes = [C.c_void_p, C.POINTER(RunSummary)]
    lib.sotto_client_next_batch.argtypes = [C.c_void_p]
    lib.sotto_client_state_generation.argtypes = [C.c_void_p]
    lib.sotto_client_state_generation.restype = C.c_uint64
    lib.sotto_client_ledger_size.argtypes = [C.c_void_p, C.POINTER(C.c_size_t)]
    lib.sotto_client_ledger_entry.argtypes = [C.c_void_p, C.c_size_t, C.POINTER(LedgerEntry)]
    lib.sotto_client_destroy.argtypes = [C.c_void_p]
    lib.sotto_set_training_error.argtypes = [C.c_char_p]
    return lib


def load_shard(data_dir, shard, shards, limit):
    with gzip.open(os.path.join(data_dir, "train-images-idx3-ubyte.gz")) as f:
        images = f.read()[16:]
    with gzip.open(os.path.join(data_dir, "train-labels-idx1-ubyte.gz")) as f:
        labels = f.read()[8:]
    examples = []
    for i in range(shard, len(labels), shards):
        if len(examples) == limit:
            break
        pixels = images[i * PIXELS:(i + 1) * PIXELS]
        examples.append(([(p / 255.0 - 0.2860) / 0.3530 for p in pixels], labels[i]))
    return examples


def sgd(weight, bias, examples, plan, next_batch):
    """Mini-batch SGD on softmax cross-entropy; returns (mean loss, accuracy) of the last epoch."""
    loss = correct = 0
    for _ in range(plan.epochs):
        loss = correct = 0
        for begin in range(0, len(examples), plan.batch_size):
            if not next_batch():  # cancelled, stopped, opted out or ineligible
                return loss / len(examples), correct / len(examples)
            batch = examples[begin:begin + plan.batch_size]
            grad_w = [[0.0] * PIXELS for _ in range(CLASSES)]
            grad_b = [0.0] * CLASSES
            for x, label in batch:
                logits = [bias[k] + sum(w * v for w, v in zip(weight[k], x)) for k in range(CLASSES)]
                top = max(logits)
                exps = [math.exp(z - top) for z in logits]
                total = sum(exps)
                loss -= logits[label] - top - math.log(total)
                correct += logits.index(top) == label
                for k in range(CLASSES):
                    g = exps[k] / total - (k == label)
                    grad_b[k] += g
                    row = grad_w[k]
                    for p, v in enumerate(x):
                        row[p] += g * v
            step = plan.learning_rate / len(batch)
            for k in range(CLASSES):
                bias[k] -= step * grad_b[k]
                weight[k] = [w - step * g - plan.weight_decay * w for w, g in zip(weight[k], grad_w[k])]
    return loss / len(examples), correct / len(examples)


def main(argv):
    if len(argv) != 8:
        print(__doc__, file=sys.stderr)
        return 2
    library, config, key_file, data_dir, shard, shards, limit = argv[1:]
    lib = bind(library)
    examples = load_shard(data_dir, int(shard), int(shards), int(limit))
    client = C.c_void_p()

    def floats(tensor):
        """The tensor's memory as a ctypes array: sliced and assigned in place."""
        return (C.c_float * tensor.count).from_address(C.addressof(tensor.data.contents))

    def fit(tensors, count, plan, result):
        by_name = {tensors[i].name.decode(): tensors[i] for i in range(count)}
        w, b = by_name.get("fc.weight"), by_name.get("fc.bias")
        if w is None or b is None or w.count != CLASSES * PIXELS or b.count != CLASSES:
            lib.sotto_set_training_error(b"the aggregator's model is not fashion_linear")
            return SOTTO_ERROR_TRAINING
        w_data, b_data = floats(w), floats(b)
        weight = [w_data[k * PIXELS:(k + 1) * PIXELS] for k in range(CLASSES)]
        bias = b_data[:]
        loss, accuracy = sgd(weight, bias, examples, plan.contents, lambda: lib.sotto_client_next_batch(client))
        for k in range(CLASSES):
            w_data[k * PIXELS:(k + 1) * PIXELS] = weight[k]
        b_data[:] = bias
        result.contents.num_examples, result.contents.mean_loss, result.contents.accuracy = len(examples), loss, accuracy
        return SOTTO_OK

    def train(_user, tensors, count, plan, result):
        try:
            return fit(tensors, count, plan, result)
        except Exception as e:  # an exception must not unwind into C
            lib.sotto_set_training_error(("the Python training failed: %r" % e).encode())
            return SOTTO_ERROR_TRAINING

    callback = TRAIN_FN(train)  # kept alive for the client's lifetime
    with open(key_file) as f:
        key = (C.c_uint8 * 32).from_buffer_copy(bytes.fromhex(f.read().strip()))
    generation_file = key_file + ".generation"
    kept = int(open(generation_file).read()) if os.path.exists(generation_file) else 0
    options = Options(config.encode(), key, kept)
    status = lib.sotto_client_create(C.byref(options), callback, None, C.byref(client))
    if status != SOTTO_OK:
        print("sotto_app:", lib.sotto_status_name(status).decode(), lib.sotto_last_error().decode(), file=sys.stderr)
        return 1
    lib.sotto_client_set_consent(client, 1, SOTTO_CONSENT_TRAINING, 0)  # the person said yes
    summary = RunSummary()
    status = lib.sotto_client_run(client, C.byref(summary))
    if status != SOTTO_OK:
        print("sotto_app:", lib.sotto_status_name(status).decode(), lib.sotto_last_error().decode(), file=sys.stderr)
    with open(generation_file, "w") as f:
        f.write("%d\n" % lib.sotto_client_state_generation(client))
    print("sotto_app: finished %d, rounds contributed %d" % (summary.finished, summary.rounds_contributed))
    size = C.c_size_t()
    lib.sotto_client_ledger_size(client, C.byref(size))
    print("sotto_app: ledger: %d entries" % size.value)
    for i in range(size.value):
        e = LedgerEntry()
        lib.sotto_client_ledger_entry(client, i, C.byref(e))
        print("sotto_app: ledger round %d %s examples %d bytes_sent %d secure %d"
              % (e.round, e.outcome.decode(), e.examples, e.bytes_sent, e.secure_aggregation))
    lib.sotto_client_destroy(client)
    return 0 if status == SOTTO_OK and summary.finished else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
