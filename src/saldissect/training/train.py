"""Training: baseline, phase one (factorised) and phase two (reformulated).

All three share one loop (`fit`) with the reference loss
``-NSS + 10 KLD - 2 CC`` on the prediction divided by its per-image max, Adam,
a step or one-cycle schedule, a history row per epoch and split, the best
checkpoint by validation CC, and resume from the last completed epoch.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import Tensor
from torch.utils.data import DataLoader, TensorDataset
from tqdm import tqdm

from saldissect.core.io import load_checkpoint, save_checkpoint, write_parquet
from saldissect.data.datasets import SaliencyDataset, single_threaded_worker
from saldissect.models import networks
from saldissect.models.networks import SaliencyModel
from saldissect.training import resources

log = logging.getLogger(__name__)
EPS = 1e-8


# ------------------------------------------------------------------------ loss
def _standardise(x: Tensor) -> Tensor:
    flat = x.flatten(1)
    return (flat - flat.mean(1, keepdim=True)) / (flat.std(1, keepdim=True) + EPS)


def batch_cc(pred: Tensor, gt: Tensor) -> Tensor:
    p, g = _standardise(pred), _standardise(gt)
    return (p * g).mean(1)


def batch_nss(pred: Tensor, fixations: Tensor) -> Tensor:
    p, f = _standardise(pred), fixations.flatten(1)
    return (p * f).sum(1) / f.sum(1).clamp_min(1.0)


def batch_kld(pred: Tensor, gt: Tensor) -> Tensor:
    p = pred.flatten(1) / (pred.flatten(1).sum(1, keepdim=True) + EPS)
    g = gt.flatten(1) / (gt.flatten(1).sum(1, keepdim=True) + EPS)
    return (g * torch.log(EPS + g / (p + EPS))).sum(1)


def batch_sim(pred: Tensor, gt: Tensor) -> Tensor:
    p = pred.flatten(1) / (pred.flatten(1).sum(1, keepdim=True) + EPS)
    g = gt.flatten(1) / (gt.flatten(1).sum(1, keepdim=True) + EPS)
    return torch.minimum(p, g).sum(1)


def saliency_loss(pred: Tensor, gt: Tensor, fixations: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
    """Reference loss on max-normalised predictions; returns (loss, per-batch metrics)."""
    pred = pred / (pred.flatten(1).max(1).values.view(-1, 1, 1, 1) + EPS)
    cc, nss, kld = batch_cc(pred, gt), batch_nss(pred, fixations), batch_kld(pred, gt)
    loss = (-nss + 10 * kld - 2 * cc).mean()
    return loss, {
        "cc": cc.detach(),
        "nss": nss.detach(),
        "kld": kld.detach(),
        "sim": batch_sim(pred, gt).detach(),
    }


# ---------------------------------------------------------------------- helpers
def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)


def build_model(model_cfg: dict, head: str) -> SaliencyModel:
    """The configured architecture (`networks.build`: a key of another architecture is refused)."""
    return networks.build(model_cfg, head)


def load_model(
    checkpoint: str | Path, model_cfg: dict, head: str, device: torch.device
) -> SaliencyModel:
    """A trained model from its checkpoint (loaded with weights_only), in eval mode.

    Built without its ImageNet weights: the checkpoint replaces every parameter.
    """
    model = build_model(networks.without_weights(model_cfg), head)
    model.load_state_dict(load_checkpoint(checkpoint)["model"])
    return model.to(device).eval()


def _scheduler(optimizer, cfg: dict, steps_per_epoch: int):
    if cfg["schedule"] == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=cfg["lr"], total_steps=cfg["epochs"] * steps_per_epoch
        )
    return torch.optim.lr_scheduler.StepLR(
        optimizer, cfg["lr_decay_every"] * steps_per_epoch, cfg["lr_decay"]
    )


class Trainer:
    """Epoch loop shared by every training rule.

    ``forward(batch) -> (saliency, prob or None)`` abstracts over training on
    images or on cached probability maps.
    """

    def __init__(
        self,
        model: SaliencyModel,
        params: Iterable[Tensor],
        cfg: dict,
        out_dir: Path,
        device: torch.device,
        steps_per_epoch: int,
        sparsity: float = 0.0,
        snapshots: Iterable[int] = (),
        frozen: torch.nn.Module | None = None,
    ):
        self.model, self.cfg, self.out_dir, self.device = model, cfg, Path(out_dir), device
        # A frozen part of ``model`` (phase two's features) stays in eval mode:
        # its batch norms must not learn from the batches it recomputes P on.
        self.frozen = frozen
        # Epoch counts (1-based) after which the model is kept as it is: the
        # progressive analysis dissects them. Written under .snapshots/ while
        # training (a rerun deletes declared outputs, not these) and copied to
        # epoch<e>.pt when training finishes.
        self.snapshots = sorted(set(snapshots))
        self.optimizer = torch.optim.Adam(params, lr=cfg["lr"], weight_decay=cfg["weight_decay"])
        self.scheduler = _scheduler(self.optimizer, cfg, steps_per_epoch)
        self.sparsity = sparsity
        self.history: list[dict] = []
        self.best_cc, self.start_epoch = -np.inf, 0
        self.loader_wait, self.loader_first = 0.0, 0.0
        self.resume_path = self.out_dir / "resume.pt"

    def snapshot_path(self, epochs: int) -> Path:
        return self.out_dir / ".snapshots" / f"epoch{epochs}.pt"

    def resume(self, meta: dict) -> None:
        if not self.resume_path.exists():
            return
        state = load_checkpoint(self.resume_path)
        if state["meta"] != meta:
            log.warning(
                "%s was written with another configuration; starting afresh", self.resume_path
            )
            return
        missing = [
            e
            for e in self.snapshots
            if e <= state["epoch"] + 1 and not self.snapshot_path(e).exists()
        ]
        if missing:
            log.warning(
                "%s is past epoch %s whose snapshot is missing; starting afresh",
                self.resume_path,
                missing[0],
            )
            return
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.history, self.best_cc = state["history"], state["best_cc"]
        self.start_epoch = state["epoch"] + 1
        log.info("resuming from %s after epoch %d", self.resume_path, state["epoch"])

    def run_epoch(self, loader, forward, train: bool, desc: str) -> dict[str, float]:
        """One pass over ``loader``; mean loss and scores per image.

        Scores are summed on the device and read once at the end, so the
        host never waits for the device inside the loop and fetches the next
        batch while the device computes. Records ``loader_wait`` (share of the
        epoch spent waiting for batches) and ``loader_first`` (seconds before
        the first batch: workers start loading when the epoch starts).
        """
        keys = ("loss", "cc", "nss", "kld", "sim")
        totals = torch.zeros(len(keys), dtype=torch.float64, device=self.device)
        count, waits = 0, []
        self.model.train(train)
        if self.frozen is not None:
            self.frozen.eval()
        start = time.perf_counter()
        with torch.set_grad_enabled(train):
            fetched = time.perf_counter()
            for batch in tqdm(loader, desc=desc, leave=False, disable=None):
                waits.append(time.perf_counter() - fetched)
                gt = batch["map"].to(self.device, non_blocking=True).float()
                fixations = batch["fixations"].to(self.device, non_blocking=True).float()
                saliency, prob = forward(batch)
                loss, scores = saliency_loss(saliency, gt, fixations)
                if train:
                    total = loss + (
                        self.sparsity * prob.mean() if self.sparsity and prob is not None else 0
                    )
                    self.optimizer.zero_grad(set_to_none=True)
                    total.backward()
                    self.optimizer.step()
                    self.scheduler.step()
                n = gt.shape[0]
                step = [loss.detach() * n] + [scores[key].detach().sum() for key in keys[1:]]
                totals += torch.stack(step).double()
                count += n
                fetched = time.perf_counter()
        means = (totals / max(count, 1)).tolist()  # the one wait for the device
        seconds = max(time.perf_counter() - start, 1e-9)
        self.loader_wait = sum(waits) / seconds
        self.loader_first = waits[0] if waits else 0.0
        return dict(zip(keys, means, strict=True))

    def fit(self, train_loader, val_loader, forward, meta: dict) -> pd.DataFrame:
        self.resume(meta)
        for epoch in range(self.start_epoch, self.cfg["epochs"]):
            start = time.perf_counter()
            lr = self.optimizer.param_groups[0]["lr"]
            train_scores = self.run_epoch(train_loader, forward, True, f"epoch {epoch} train")
            train_wait, train_first = self.loader_wait, self.loader_first
            val_scores = self.run_epoch(val_loader, forward, False, f"epoch {epoch} val")
            seconds = time.perf_counter() - start
            for split, scores in (("train", train_scores), ("val", val_scores)):
                self.history.append(
                    {"epoch": epoch, "split": split, **scores, "lr": lr, "seconds": seconds}
                )
            log.info(
                "epoch %d/%d: train loss %.4f, val cc %.4f nss %.3f (%.1f s, %.0f img/s, "
                "loader wait %.0f%% of training time, %.2f s of it for the first batch)",
                epoch + 1,
                self.cfg["epochs"],
                train_scores["loss"],
                val_scores["cc"],
                val_scores["nss"],
                seconds,
                len(train_loader.dataset) / max(seconds, 1e-9),
                100 * train_wait,
                train_first,
            )
            state = {"model": self.model.state_dict(), "meta": meta}
            if epoch + 1 in self.snapshots:
                save_checkpoint({**state, "epoch": epoch}, self.snapshot_path(epoch + 1))
            if val_scores["cc"] > self.best_cc:
                self.best_cc = val_scores["cc"]
                save_checkpoint({**state, "epoch": epoch}, self.out_dir / "best.pt")
            save_checkpoint(
                {
                    **state,
                    "optimizer": self.optimizer.state_dict(),
                    "scheduler": self.scheduler.state_dict(),
                    "history": self.history,
                    "best_cc": self.best_cc,
                    "epoch": epoch,
                },
                self.resume_path,
            )
        columns = ["epoch", "split", "loss", "cc", "nss", "kld", "sim", "lr", "seconds"]
        return pd.DataFrame(self.history, columns=columns)


def _loaders(train: pd.DataFrame, val: pd.DataFrame, size, cfg: dict, threads: int, hflip: bool):
    cache = len(train) + len(val) <= cfg["cache_images"]
    workers = 0 if cache else max(0, threads - 1)
    common = {
        "num_workers": workers,
        "pin_memory": torch.cuda.is_available(),
        "persistent_workers": workers > 0,
        "worker_init_fn": single_threaded_worker,
    }
    generator = torch.Generator().manual_seed(cfg["seed"])
    train_loader = DataLoader(
        SaliencyDataset(train, size, hflip=hflip, cache=cache),
        batch_size=cfg["batch_size"],
        shuffle=True,
        drop_last=len(train) > cfg["batch_size"],
        generator=generator,
        **common,
    )
    val_loader = DataLoader(
        SaliencyDataset(val, size, cache=cache), batch_size=cfg["batch_size"], **common
    )
    return train_loader, val_loader


def finish_training(
    model: SaliencyModel,
    history: pd.DataFrame,
    out_dir: Path,
    meta: dict,
    snapshots: Iterable[int] = (),
) -> None:
    for epochs in snapshots:
        kept = load_checkpoint(out_dir / ".snapshots" / f"epoch{epochs}.pt")
        kept["versions"] = {"torch": str(torch.__version__)}
        save_checkpoint(kept, out_dir / f"epoch{epochs}.pt")
        (out_dir / ".snapshots" / f"epoch{epochs}.pt").unlink()
    best = load_checkpoint(out_dir / "best.pt")
    model.load_state_dict(best["model"])
    save_checkpoint(
        {
            "model": model.state_dict(),
            "meta": meta,
            "epoch": best["epoch"],
            "versions": {"torch": str(torch.__version__)},
        },
        out_dir / "model.pt",
    )
    write_parquet(history, out_dir / "history.parquet", "history")
    (out_dir / "best.pt").unlink()
    (out_dir / "resume.pt").unlink()


def train_saliency(
    train: pd.DataFrame,
    val: pd.DataFrame,
    model_cfg: dict,
    cfg: dict,
    out_dir: str | Path,
    *,
    head: str,
    threads: int = 1,
    device: str = "auto",
    snapshots: Iterable[int] = (),
) -> pd.DataFrame:
    """Train a model end to end on images (baseline: ``plain`` head; phase one: ``factorised``).

    ``snapshots``: epoch counts after which the model is also kept, as
    ``out_dir/epoch<e>.pt`` (the progressive analysis); each must be below
    ``cfg["epochs"]``, whose model is ``model.pt`` itself."""
    too_late = [e for e in snapshots if not 1 <= e < cfg["epochs"]]
    if too_late:
        raise ValueError(
            f"snapshot epochs {too_late} are not between 1 and {cfg['epochs'] - 1} "
            f"(the last epoch's model is model.pt)"
        )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    seed_everything(cfg["seed"])
    dev = pick_device(device)
    model = build_model(model_cfg, head).to(dev)
    size = tuple(model_cfg["input_size"])
    train_loader, val_loader = _loaders(train, val, size, cfg, threads, cfg["hflip"])
    sparsity = cfg["sparsity"] if head == "factorised" else 0.0
    trainer = Trainer(
        model, model.parameters(), cfg, out_dir, dev, len(train_loader), sparsity, snapshots
    )
    autocast = cfg.get("bf16", False) and dev.type == "cuda"

    def forward(batch):
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=autocast):
            out = model(batch["image"].to(dev, non_blocking=True))
        return out["saliency"].float(), out.get("prob")

    meta = {"head": head, "model": model_cfg, "train": cfg}
    history = trainer.fit(train_loader, val_loader, forward, meta)
    finish_training(model, history, out_dir, meta, trainer.snapshots)
    return history


# ------------------------------------------------- training on a frozen phase one
def grid_of(model: SaliencyModel, size: tuple[int, int], device: torch.device) -> tuple[int, int]:
    """The model's feature grid (h, w) for inputs of ``size``: one forward pass of one image."""
    with torch.no_grad():
        image = torch.zeros(1, 3, *size, dtype=torch.uint8, device=device)
        return tuple(model.eval()(image)["prob"].shape[-2:])


def frozen_mode(cfg: dict, n_images: int, n_bases: int, grid: tuple[int, int]) -> str:
    """How phase two and the interaction variant get P of the frozen phase one.

    ``memory``: computed once, kept in RAM as float32 (small worlds);
    ``recompute``: recomputed under ``no_grad`` at every step (memory flat in
    the number of images); ``disk``: read from the float16 cache that rule
    ``cache_prob_maps`` writes (`write_prob_cache`). ``auto`` is resolved by
    `saldissect.training.resources.frozen_maps`; without the workflow's cache file it
    can only choose ``memory`` or ``recompute`` (the workflow resolves it
    before, to ``disk`` on a CPU).
    """
    return resources.frozen_maps(
        cfg.get("frozen_maps", "auto"),
        p_bytes=n_images * n_bases * grid[0] * grid[1] * 4,
        cache_mb=cfg.get("cache_mb", 1024),
        gpu=False,
        disk=False,
    )


@torch.no_grad()
def _prob_in_memory(
    model: SaliencyModel, loader: DataLoader, device: torch.device
) -> TensorDataset:
    """One pass over a split: P (B x N x h x w), maps and fixations, kept in RAM."""
    model.eval()
    probs, maps, fixations = [], [], []
    for batch in tqdm(loader, desc="probability maps", disable=None):
        probs.append(model(batch["image"].to(device))["prob"].float().cpu())
        maps.append(batch["map"])
        fixations.append(batch["fixations"])
    return TensorDataset(torch.cat(probs), torch.cat(maps), torch.cat(fixations))


def _collate_memory(samples) -> dict[str, Tensor]:
    prob, maps, fixations = torch.utils.data.default_collate(samples)
    return {"prob": prob, "map": maps, "fixations": fixations}


@torch.no_grad()
def write_prob_cache(
    model: SaliencyModel,
    table: pd.DataFrame,
    size: tuple[int, int],
    path: str | Path,
    *,
    batch_size: int,
    threads: int,
    device: torch.device,
) -> tuple[int, ...]:
    """P of every image of ``table``, in its row order, as one float16 ``.npy`` file.

    Written batch by batch with plain writes (never held whole, never mapped),
    so memory stays at one batch; `ProbCache` reads it back. Returns its shape.
    """
    model.eval()
    loader = DataLoader(
        SaliencyDataset(table, size, maps=False),
        batch_size=batch_size,
        num_workers=max(0, threads - 1),
        worker_init_fn=single_threaded_worker,
    )
    grid = grid_of(model, size, device)
    shape = (len(table), model.n_bases, *grid)
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float16)), "fortran_order": False}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        np.lib.format.write_array_header_2_0(handle, {**header, "shape": shape})
        for batch in tqdm(loader, desc=f"probability maps -> {Path(path).name}", disable=None):
            prob = model(batch["image"].to(device))["prob"]
            handle.write(prob.to(torch.float16).cpu().numpy().tobytes())
    return shape


class ProbCache(torch.utils.data.Dataset):
    """Samples of a `write_prob_cache` file (P as float16) with their map and fixations.

    Each sample is one positioned read of its own bytes (``os.pread``): the
    file is never mapped, so resident memory stays at the batches in flight
    however large the file. Maps and fixations come from their files.
    """

    def __init__(self, path: str | Path, table: pd.DataFrame, size: tuple[int, int]) -> None:
        self.path = str(path)
        header = np.load(self.path, mmap_mode="r")  # the header only: no page is read
        shape, dtype, self.offset = header.shape, header.dtype, header.offset
        del header
        if shape[0] != len(table) or dtype != np.float16:
            raise ValueError(
                f"{self.path}: holds {shape[0]} {dtype} maps, expected {len(table)} float16 "
                "(a stale cache: delete it and rerun)"
            )
        self.shape = tuple(shape[1:])
        self.nbytes = int(np.prod(self.shape)) * 2
        self.targets = SaliencyDataset(table, size, images=False)
        self._fd: int | None = None
        self._pid = -1

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        if self._fd is None or self._pid != os.getpid():  # one descriptor per worker
            self._fd, self._pid = os.open(self.path, os.O_RDONLY), os.getpid()
        raw = os.pread(self._fd, self.nbytes, self.offset + index * self.nbytes)
        prob = torch.from_numpy(np.frombuffer(raw, np.float16).reshape(self.shape).copy())
        return {**self.targets[index], "prob": prob}


class FrozenInputs:
    """Loaders and the P of each batch for stages that train on a frozen phase one.

    ``prob(batch)`` returns P (float32, on the device) whether the loader
    carries it (``memory``, ``disk``) or the images (``recompute``).
    """

    def __init__(
        self,
        model: SaliencyModel,
        train: pd.DataFrame,
        val: pd.DataFrame,
        size: tuple[int, int],
        cfg: dict,
        threads: int,
        device: torch.device,
        cache: dict[str, str] | None = None,
    ) -> None:
        self.model, self.device = model, device
        grid = grid_of(model, size, device)
        self.mode = frozen_mode(cfg, len(train) + len(val), model.n_bases, grid)
        if self.mode == "disk" and not cache:
            raise ValueError("frozen_maps: disk needs the cache files of rule cache_prob_maps")
        log.info(
            "P of the frozen phase one (%d bases on a %dx%d grid, %d images): %s",
            model.n_bases,
            *grid,
            len(train) + len(val),
            self.mode,
        )
        workers = max(0, threads - 1)
        common = {"num_workers": workers, "worker_init_fn": single_threaded_worker}
        if self.mode == "memory":
            datasets = [
                _prob_in_memory(
                    model,
                    DataLoader(
                        SaliencyDataset(table, size), batch_size=cfg["batch_size"], **common
                    ),
                    device,
                )
                for table in (train, val)
            ]
            common = {"collate_fn": _collate_memory}
        elif self.mode == "disk":
            datasets = [
                ProbCache(cache[split], table, size)
                for split, table in (("train", train), ("val", val))
            ]
            common = {**common, "persistent_workers": workers > 0}
        else:
            datasets = [SaliencyDataset(table, size) for table in (train, val)]
            common = {**common, "persistent_workers": workers > 0}
        generator = torch.Generator().manual_seed(cfg["seed"])
        self.train_loader = DataLoader(
            datasets[0], batch_size=cfg["batch_size"], shuffle=True, generator=generator, **common
        )
        self.val_loader = DataLoader(datasets[1], batch_size=cfg["batch_size"], **common)
        self.autocast = cfg.get("bf16", False) and device.type == "cuda"

    def prob(self, batch: dict[str, Tensor]) -> Tensor:
        if "prob" in batch:
            return batch["prob"].to(self.device, non_blocking=True).float()
        with (
            torch.no_grad(),
            torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast),
        ):
            image = batch["image"].to(self.device, non_blocking=True)
            return self.model.probability_maps(
                self.model.features(self.model.normalise(image))
            ).float()


def fit_on_frozen_maps(
    frozen: SaliencyModel,
    trainable: torch.nn.Module,
    parameters: Iterable[Tensor],
    predict: Callable[[Tensor, tuple[int, int]], Tensor],
    train: pd.DataFrame,
    val: pd.DataFrame,
    model_cfg: dict,
    cfg: dict,
    out_dir: Path,
    meta: dict,
    *,
    threads: int,
    device: torch.device,
    cache: dict[str, str] | None = None,
    frozen_modules: torch.nn.Module | None = None,
) -> pd.DataFrame:
    """Train ``parameters`` of ``trainable`` on P of the ``frozen`` phase one:
    ``predict(P, input_size)`` gives the saliency. Phase two and the interaction
    variant train this way. P reaches ``predict`` as `FrozenInputs` says
    (``cfg["frozen_maps"]``: kept in memory, recomputed, or read from the
    ``cache`` files of rule ``cache_prob_maps``); the loop, history, best
    checkpoint and resume are `Trainer`'s, and ``model.pt`` holds ``trainable``
    with ``meta`` (the model and training settings added)."""
    size = tuple(model_cfg["input_size"])
    inputs = FrozenInputs(frozen, train, val, size, cfg, threads, device, cache)
    trainer = Trainer(
        trainable,
        parameters,
        cfg,
        out_dir,
        device,
        len(inputs.train_loader),
        frozen=frozen_modules,
    )

    def forward(batch):
        return predict(inputs.prob(batch), size), None

    meta = {**meta, "model": model_cfg, "train": cfg}
    history = trainer.fit(inputs.train_loader, inputs.val_loader, forward, meta)
    finish_training(trainable, history, out_dir, meta)
    return history


def start_training(out_dir: str | Path, cfg: dict, device: str) -> tuple[Path, torch.device]:
    """The run's folder (created), its seed set, and the device to train on."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    seed_everything(cfg["seed"])
    return out_dir, pick_device(device)


def train_phase2(
    train: pd.DataFrame,
    val: pd.DataFrame,
    model_cfg: dict,
    cfg: dict,
    phase1_checkpoint: str | Path,
    out_dir: str | Path,
    *,
    threads: int = 1,
    device: str = "auto",
    cache: dict[str, str] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Phase two: freeze phase one, train only the bias-free conv on P
    (`fit_on_frozen_maps`); the returned basis weights are the per-basis kernel sums.
    """
    out_dir, dev = start_training(out_dir, cfg, device)
    model = build_model(model_cfg, "reformulated").to(dev)
    model.load_state_dict(load_checkpoint(phase1_checkpoint)["model"])
    history = fit_on_frozen_maps(
        model,
        model,
        model.freeze_for_phase2(offset=cfg.get("offset", False)),
        model.saliency_from_prob,
        train,
        val,
        model_cfg,
        cfg,
        out_dir,
        {"head": "reformulated", "phase1": str(phase1_checkpoint)},
        threads=threads,
        device=dev,
        cache=cache,
        frozen_modules=model.features,
    )
    weights = model.basis_weights().cpu().numpy()
    basis = pd.DataFrame({"basis": np.arange(len(weights)), "weight": weights.astype(np.float64)})
    return history, basis
