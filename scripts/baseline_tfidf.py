#!/usr/bin/python3
"""baseline_tfidf.py: the classical baseline a user would try first, for honest comparisons.

TF-IDF features (word 1-2-grams + character 2-5-grams within word boundaries, sublinear tf) and a
multinomial logistic regression, trained on DIR/train.jsonl (C chosen on DIR/val.jsonl when it
exists), measured on the test set the same way `slm eval` measures a model: accuracy, macro-F1,
per-label P/R/F1, confusion matrix, ECE and reliability bins (same bin rule), single-query latency
percentiles (linear interpolation, as src/eval/latency.h), batched throughput, peak RSS, model size
(the pickled vectorisers + classifier), energy (RAPL where readable, else CPU seconds x watts per
core, labelled), carbon and cost per 1,000 queries, and optionally held-out-intent AUROC / recall.

It writes OUT/report.json in slm eval's schema (src/eval/report.h), so it can be the baseline of a
run (`slm eval MODEL --data TEST --baseline-report OUT/report.json`) and appear in its plots.

Needs Debian's python3-sklearn (scripts/setup's optional packages); it is run with /usr/bin/python3
because a python3 earlier on PATH may not see Debian's packages. Without scikit-learn it prints
"skipped: ..." and exits 3, so callers can tell a skip from a failure (1) or bad usage (2).

Reference figure (Banking77 official test set): 91.8% accuracy, 91.8% macro-F1, ~1.5 ms/query.
"""
import argparse
import json
import math
import os
import pickle
import resource
import sys
import time

SCHEMA = "slm-eval-report/1"
POWERCAP = "/sys/class/powercap"


def read_jsonl(path):
    texts, labels = [], []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                text, label = row["text"], row["label"]
            except (ValueError, KeyError, TypeError) as e:
                sys.exit(f"baseline_tfidf: {path}:{n}: want {{\"text\": ..., \"label\": ...}} ({e})")
            if not isinstance(text, str) or isinstance(label, (dict, list, bool)) or label is None:
                sys.exit(f"baseline_tfidf: {path}:{n}: text must be a string, label a string or integer")
            texts.append(text)
            labels.append(str(label))
    if not texts:
        sys.exit(f"baseline_tfidf: {path}: no examples")
    return texts, labels


def percentile(sorted_x, p):
    """Linear interpolation between closest ranks (type 7), as src/eval/latency.c."""
    h = (len(sorted_x) - 1) * p / 100.0
    lo = int(math.floor(h))
    if lo >= len(sorted_x) - 1:
        return sorted_x[-1]
    return sorted_x[lo] + (h - lo) * (sorted_x[lo + 1] - sorted_x[lo])


def peak_rss_reset():
    """Resets the peak RSS to the current RSS (Linux), so it measures inference, not training."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_kib():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def rapl_read(root):
    """{zone: (energy_uj, max_range_uj)} of the package zones intel-rapl:N, or None."""
    try:
        names = sorted(n for n in os.listdir(root)
                       if n.startswith("intel-rapl:") and n[len("intel-rapl:"):].isdigit())
        zones = {}
        for n in names:
            with open(os.path.join(root, n, "energy_uj")) as f:
                e = int(f.read())
            try:
                with open(os.path.join(root, n, "max_energy_range_uj")) as f:
                    m = int(f.read())
            except OSError:
                m = 0
            zones[n] = (e, m)
        return zones or None
    except (OSError, ValueError):
        return None


def rapl_joules(a, b):
    if a is None or b is None or a.keys() != b.keys():
        return None
    uj = 0
    for z, (e0, m) in a.items():
        e1 = b[z][0]
        if e1 >= e0:
            uj += e1 - e0
        elif m > e0:
            uj += m - e0 + e1
        else:
            return None
    return uj * 1e-6


def metrics(probs, gold, n_labels, n_bins):
    """Same conventions as src/eval/classify_metrics.h (gold -1 = a label the model lacks)."""
    n = len(gold)
    pred = probs.argmax(axis=1)
    conf = probs.max(axis=1)
    confusion = [[0] * n_labels for _ in range(n_labels)]
    support, predicted, tp = [0] * n_labels, [0] * n_labels, [0] * n_labels
    bins = [[0, 0.0, 0] for _ in range(n_bins)]
    correct_total = 0
    for g, p, c in zip(gold, pred, conf):
        p = int(p)
        predicted[p] += 1
        ok = g == p
        if g >= 0:
            support[g] += 1
            confusion[g][p] += 1
        if ok:
            tp[p] += 1
            correct_total += 1
        c = min(max(float(c), 0.0), 1.0)
        b = min(int(c * n_bins), n_bins - 1)
        bins[b][0] += 1
        bins[b][1] += c
        bins[b][2] += ok
    div = lambda a, b: a / b if b > 0 else 0.0
    prec = [div(tp[j], predicted[j]) for j in range(n_labels)]
    rec = [div(tp[j], support[j]) for j in range(n_labels)]
    f1 = [div(2 * prec[j] * rec[j], prec[j] + rec[j]) for j in range(n_labels)]
    present = [j for j in range(n_labels) if support[j] or predicted[j]]
    rel, ece = [], 0.0
    for b, (cnt, csum, cok) in enumerate(bins):
        cm = csum / cnt if cnt else 0.0
        am = cok / cnt if cnt else 0.0
        ece += cnt / n * abs(am - cm)
        rel.append({"lo": b / n_bins, "hi": (b + 1) / n_bins, "count": cnt, "confidence": cm, "accuracy": am})
    return {
        "accuracy": correct_total / n,
        "macro_f1": div(sum(f1[j] for j in present), len(present)),
        "ece": ece, "ece_bins": n_bins, "mean_confidence": float(conf.mean()),
        "precision": prec, "recall": rec, "f1": f1, "support": support,
        "confusion": confusion, "reliability": rel,
    }


def auroc(pos, neg):
    """P(pos > neg) + P(pos == neg) / 2 from average ranks (Mann-Whitney U)."""
    s = sorted([(x, 1) for x in pos] + [(x, 0) for x in neg])
    rank_sum, i = 0.0, 0
    while i < len(s):
        j = i
        while j < len(s) and s[j][0] == s[i][0]:
            j += 1
        rank_sum += (i + 1 + j) / 2.0 * sum(t for _, t in s[i:j])
        i = j
    return (rank_sum - len(pos) * (len(pos) + 1) / 2.0) / (len(pos) * len(neg))


def ood_at_accuracy(in_conf, in_ok, ood_conf, target):
    """As slm_ood_at_accuracy: lowest threshold whose kept in-scope answers reach target."""
    a = sorted(zip(in_conf, in_ok), key=lambda t: -t[0])
    out = {"target_in_accuracy": target, "reached": False, "threshold": None,
           "in_coverage": 0.0, "in_accuracy": 0.0}
    thr, kept, correct, i = math.nextafter(1.0, 2.0), 0, 0, 0
    while i < len(a):
        j = i
        while j < len(a) and a[j][0] == a[i][0]:
            correct += a[j][1]
            j += 1
        kept = j
        acc = correct / kept
        if acc >= target - 1e-12:
            thr = a[i][0]
            out.update(reached=True, threshold=thr, in_coverage=kept / len(a), in_accuracy=acc)
        i = j
    out["ood_recall"] = sum(c < thr for c in ood_conf) / len(ood_conf)
    return out


def main():
    ap = argparse.ArgumentParser(description="TF-IDF + logistic regression baseline in slm eval's report schema")
    ap.add_argument("--data", required=True, help="directory with train.jsonl [, val.jsonl, test.jsonl]")
    ap.add_argument("--test", help="test JSONL (default DIR/test.jsonl)")
    ap.add_argument("--ood", help="JSONL of examples whose intents were held out of training")
    ap.add_argument("--ood-target", type=float, default=0.95)
    ap.add_argument("-o", "--out", required=True, help="directory for report.json")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--latency-samples", type=int, default=200)
    ap.add_argument("--ece-bins", type=int, default=15)
    ap.add_argument("--C", type=float, default=None, help="inverse regularisation (default: chosen on val)")
    ap.add_argument("--refit", action="store_true",
                    help="train the final model on train + val (after C is chosen), as slm finetune --refit")
    ap.add_argument("--watts-per-core", type=float, default=10.0)
    ap.add_argument("--grid-g-per-kwh", type=float, default=400.0)
    ap.add_argument("--price-per-cpu-hour", type=float, default=0.05)
    ap.add_argument("--powercap", default=POWERCAP, help="powercap tree; 'none' never reads RAPL")
    args = ap.parse_args()

    try:
        import numpy as np
        from scipy.sparse import hstack
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
    except ImportError as e:
        print(f"skipped: python3-sklearn not installed ({e}); apt-get install python3-sklearn", file=sys.stderr)
        return 3

    train_x, train_y = read_jsonl(os.path.join(args.data, "train.jsonl"))
    val_path = os.path.join(args.data, "val.jsonl")
    val = read_jsonl(val_path) if os.path.exists(val_path) else None
    test_path = args.test or os.path.join(args.data, "test.jsonl")
    test_x, test_y = read_jsonl(test_path)
    labels = sorted(set(train_y) | (set(val[1]) if val else set()))
    index = {l: i for i, l in enumerate(labels)}

    def fit(C):
        word = TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True, lowercase=True)
        char = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, lowercase=True)
        x = hstack([word.fit_transform(train_x), char.fit_transform(train_x)]).tocsr()
        clf = LogisticRegression(C=C, max_iter=3000)
        clf.fit(x, [index[y] for y in train_y])
        return word, char, clf

    def proba(model, texts):
        word, char, clf = model
        x = hstack([word.transform(texts), char.transform(texts)]).tocsr()
        p = np.zeros((len(texts), len(labels)))
        p[:, clf.classes_] = clf.predict_proba(x)
        return p

    if args.C is not None:
        C = args.C
    elif val is not None:
        best = None
        for c in (1.0, 3.0, 10.0, 30.0):
            m = fit(c)
            acc = float((proba(m, val[0]).argmax(1) == np.array([index.get(y, -1) for y in val[1]])).mean())
            print(f"C={c:g}: validation accuracy {100 * acc:.2f}%", file=sys.stderr)
            if best is None or acc > best[0]:
                best = (acc, c)
        C = best[1]
    else:
        C = 10.0
    refit = args.refit and val is not None
    if refit:
        train_x, train_y = train_x + val[0], train_y + val[1]
    t0 = time.perf_counter()
    model = fit(C)
    train_s = time.perf_counter() - t0
    size = len(pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL))

    gold = [index.get(y, -1) for y in test_y]
    rss_reset = peak_rss_reset()
    root = None if args.powercap == "none" else args.powercap
    r0 = rapl_read(root) if root else None
    w0, c0 = time.perf_counter(), time.process_time()
    probs = np.concatenate([proba(model, test_x[i:i + args.batch]) for i in range(0, len(test_x), args.batch)])
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    joules = rapl_joules(r0, rapl_read(root) if root else None)
    m = metrics(probs, gold, len(labels), args.ece_bins)

    lat = []
    for t in test_x[:5]:
        proba(model, [t])
    for t in test_x[:args.latency_samples]:
        s = time.perf_counter()
        proba(model, [t])
        lat.append((time.perf_counter() - s) * 1e3)
    lat.sort()

    n = len(test_x)
    measured = joules is not None
    if not measured:
        joules = cpu * args.watts_per_core
    jq = joules / n
    unknown = {}
    for y in test_y:
        if y not in index:
            unknown[y] = unknown.get(y, 0) + 1
    cand = {
        "name": "tfidf-logreg", "path": os.path.abspath(args.out), "kind": "tfidf-logreg",
        "description": f"TF-IDF word 1-2 + char_wb 2-5 grams, logistic regression C={C:g}, trained {train_s:.1f}s"
                       + (" on train + val" if refit else ""),
        "file_bytes": size, "n_labels": len(labels), "labels": labels,
        "n_examples": n, "n_unknown_label": sum(unknown.values()), "unknown_labels": unknown,
        "accuracy": m["accuracy"], "macro_f1": m["macro_f1"], "ece": m["ece"], "ece_bins": m["ece_bins"],
        "mean_confidence": m["mean_confidence"],
        "per_label": [{"label": l, "precision": m["precision"][j], "recall": m["recall"][j],
                       "f1": m["f1"][j], "support": m["support"][j]} for j, l in enumerate(labels)],
        "confusion": m["confusion"], "reliability": m["reliability"],
        "latency_samples": len(lat),
        "latency_ms_mean": sum(lat) / len(lat) if lat else None,
        **{f"latency_ms_p{p}": (percentile(lat, p) if lat else None) for p in (50, 90, 95, 99)},
        "latency_ms_max": lat[-1] if lat else None,
        "batch_size": args.batch, "throughput_queries_per_s": n / wall if wall > 0 else None,
        "batch_wall_s": wall, "batch_cpu_s": cpu,
        "peak_rss_kib": peak_rss_kib(), "peak_rss_scope": "model" if rss_reset else "process",
        "energy_method": "measured (RAPL)" if measured else "estimated",
        "energy_note": ("RAPL package energy over the batched run" if measured else
                        f"CPU seconds x {args.watts_per_core:g} W per core"),
        "energy_j": joules, "energy_j_per_query": jq,
        "queries_per_kwh": 3.6e6 / jq if jq > 0 else None,
        "gco2e_per_1k_queries": jq * 1000 / 3.6e6 * args.grid_g_per_kwh,
        "cpu_s_per_query": cpu / n,
        "cost_usd_per_1k_queries": cpu / n * 1000 / 3600 * args.price_per_cpu_hour,
    }
    report = {
        "schema": SCHEMA, "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "test_data": {"path": test_path, "n_examples": n},
        "settings": {"threads": 1, "batch_size": args.batch, "latency_samples": args.latency_samples,
                     "ece_bins": args.ece_bins, "watts_per_core": args.watts_per_core,
                     "grid_gco2e_per_kwh": args.grid_g_per_kwh, "price_usd_per_cpu_hour": args.price_per_cpu_hour,
                     "ood_target_accuracy": args.ood_target},
        "candidate": cand,
    }
    if args.ood:
        ood_x, _ = read_jsonl(args.ood)
        oc = [float(c) for c in proba(model, ood_x).max(1)]
        pred = probs.argmax(1)
        ins = [(float(probs[i].max()), int(pred[i] == g)) for i, g in enumerate(gold) if g >= 0]
        o = ood_at_accuracy([c for c, _ in ins], [k for _, k in ins], oc, args.ood_target)
        cand["ood"] = {"n_in": len(ins), "n_ood": len(oc), "auroc": auroc([c for c, _ in ins], oc), **o}
        report["ood_data"] = {"path": args.ood, "n_examples": len(oc)}

    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "report.json")
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(report, f, indent=2)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    p50 = cand["latency_ms_p50"]
    print(f"tfidf-logreg (C={C:g}): accuracy {100 * m['accuracy']:.2f}%, macro-F1 {100 * m['macro_f1']:.2f}%, "
          f"{p50 if p50 is not None else float('nan'):.3f} ms/query (p50), {size / 1e6:.1f} MB, "
          f"{cand['throughput_queries_per_s'] or 0:.0f} queries/s batched")
    print(f"report: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
