"""Probe of the budget's plan transitions: a forced pressure schedule, per-step logs (4 ranks, gloo, loopback).

The run of record for bench/cluster/results/budget-probe/*.csv (paper CNN hidden 1024, SGD 0.02 / 0.9, batch 32,
1 epoch = 468 steps, seed 2, 1-bit, the budget's controller never deciding: ``--schedule STEP:PRESSURE,...``
sets the pressure directly, the same on every rank).  Logged per step on rank 0: loss, the FC1 update the hook
delivered (nonzeros, norm), the FC1 weight change, rank 0's FC1 residual norm; at ``--eval-at`` steps the test
accuracy, and again with BatchNorm statistics recomputed from 50 training batches.  Caveat: that
recalibration runs the model in training mode, so its dropout draws shift the random stream; runs with
different ``--eval-at`` lists therefore part ways at their first evaluation, not only at their transition.

    python probe.py --seed 2 --schedule 30:1.5,441:1.25 --eval-at 441,443,468 --out relax.json
"""
import argparse, json, os, sys, time
import numpy as np

def sched_fn(spec):
    pts = sorted((int(a), float(b)) for a, b in (x.split(":") for x in spec.split(",") if x))
    def f(step):
        p = 0.0
        for s, v in pts:
            if step >= s: p = v
        return p
    return f

def worker(rank, world, args, port):
    import torch, torch.distributed as dist, torch.nn.functional as F
    from torch.nn.parallel import DistributedDataParallel as DDP
    torch.set_num_threads(1); torch.use_deterministic_algorithms(True)
    os.environ["GLOO_SOCKET_IFNAME"] = "lo"
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    from adlcodec.data import load_dataset
    from adlcodec.models import build_model
    from adlcodec.train import _shard, _evaluate
    from adlcodec.ddp import AdaCompState, adacomp_hook
    train_set = load_dataset(None, "train")
    test_set = load_dataset(None, "test", stats=(train_set.mean, train_set.std))
    spe = (len(train_set) // world) // 32
    torch.manual_seed(args.seed)
    model = build_model(in_channels=1, image_size=28, num_classes=10, hidden=1024)
    n = sum(p.numel() for p in model.parameters())
    ddp = DDP(model, bucket_cap_mb=4 * n / 2**20 + 1)
    opt = torch.optim.SGD(ddp.parameters(), lr=0.02, momentum=0.9)
    opts = dict(first_window=10**9)
    opts.update(json.loads(args.budget_options))
    st = AdaCompState(bits=1, start_iter=2, link_mbps=1000, max_comm_ms=1e9, budget_interval=10, budget_options=opts)
    if args.real_budget:
        st = AdaCompState(bits=1, start_iter=2, link_mbps=args.link, max_comm_ms=args.deadline, budget_interval=10,
                          budget_options=json.loads(args.budget_options))
    ddp.register_comm_hook(st, adacomp_hook)
    torch.manual_seed(args.seed + 1000 * rank)
    sched = sched_fn(args.schedule)
    fc1 = model.classifier[2].weight
    bn1 = model.classifier[4]
    evals = {int(x) for x in args.eval_at.split(",") if x}
    log = []
    order = _shard(len(train_set), rank, world, 0, args.seed)
    ddp.train()
    def recal_eval():
        # BN statistics recomputed from 50 training batches with the final weights
        import copy
        saved = {k: v.clone() for k, v in model.state_dict().items()}
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.reset_running_stats(); m.momentum = None
        with torch.no_grad():
            for i in range(50):
                xb, _ = map(torch.from_numpy, train_set.batch(order[i*32:(i+1)*32]))
                model(xb)
        # average across ranks so every rank evaluates the same model
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                for b in (m.running_mean, m.running_var):
                    dist.all_reduce(b); b /= world
        acc = _evaluate(model, rank, world, test_set, torch, dist, F)[0]
        model.load_state_dict(saved)
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.momentum = 0.1
        return acc
    t0 = time.time()
    for step in range(args.steps):
        if st.budget is not None and not args.real_budget:
            st.budget.pressure = sched(step)
        idx = order[step * 32:(step + 1) * 32]
        xb, yb = map(torch.from_numpy, train_set.batch(idx))
        w_before = fc1.detach().clone()
        opt.zero_grad(set_to_none=False)
        out = ddp(xb)
        loss = F.cross_entropy(out, yb)
        loss.backward()
        g = fc1.grad.detach()
        opt.step()
        res = None
        for lay, rr in st.residuals.values():
            for (o, shape, b), r in zip(lay, rr):
                if r is not None and shape == tuple(fc1.shape):
                    res = float(np.linalg.norm(r))
        rec = dict(step=step, loss=loss.item(), pressure=None if st.budget is None else st.budget.pressure,
                   g_norm=float(g.norm()), g_nnz=int((g != 0).sum()), dw=float((fc1.detach() - w_before).norm()),
                   res=res, bn_rm=float(bn1.running_mean.norm()), bn_rv=float(bn1.running_var.mean()))
        if step + 1 in evals:
            rec["acc"] = _evaluate(model, rank, world, test_set, torch, dist, F)[0]
            rec["acc_recal"] = recal_eval()
        log.append(rec)
        if rank == 0 and ("acc" in rec or step % 50 == 0):
            print(json.dumps(rec), f"{time.time()-t0:.0f}s", flush=True)
    if rank == 0:
        json.dump(dict(args=vars(args), log=log, budget=st.stats().get("budget")), open(args.out, "w"))
    dist.destroy_process_group()

if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=468); p.add_argument("--seed", type=int, default=0)
    p.add_argument("--schedule", default=""); p.add_argument("--eval-at", default="")
    p.add_argument("--out", required=True); p.add_argument("--budget-options", default="{}")
    p.add_argument("--real-budget", action="store_true"); p.add_argument("--link", type=float, default=25)
    p.add_argument("--deadline", type=float, default=35)
    args = p.parse_args()
    import torch.multiprocessing as mp, socket
    s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
    os.environ["OMP_NUM_THREADS"] = "1"
    mp.spawn(worker, args=(4, args, port), nprocs=4, join=True)
