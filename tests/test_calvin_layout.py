"""Import from / export to CALVIN's dataset layout (trainer.data.calvin_layout).

The tests build small datasets in CALVIN's layout themselves (the real ones are 166-656 GB).
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from trainer.data.calvin_layout import export_calvin, import_calvin, main
from trainer.data.store import DatasetError, Episode, EpisodeStore, EpisodeWriter

REPO = Path(__file__).resolve().parents[1]
SIX = ("actions", "rel_actions", "robot_obs", "scene_obs", "rgb_static", "rgb_gripper")

# Two recordings whose frame ids start above 0 and are not contiguous (CALVIN's split folders look
# like that); three annotations, one of them overlapping another.
RECORDINGS = [(5, 12), (20, 25)]
ANNOTATIONS = [
    (6, 9, "open_drawer", "pull the handle to open the drawer"),
    (20, 24, "turn_on_lightbulb", "flip the switch up"),
    (8, 12, "push_red_block_left", "push the red block to the left"),
]


def frame_arrays(fid: int, static: int, gripper: int, float_dtype=np.float64) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(fid)
    return {
        "actions": rng.normal(size=7).astype(float_dtype),
        "rel_actions": rng.uniform(-1, 1, size=7).astype(float_dtype),
        "robot_obs": rng.normal(size=15).astype(float_dtype),
        "scene_obs": rng.normal(size=24).astype(float_dtype),
        "rgb_static": rng.integers(0, 256, size=(static, static, 3), dtype=np.uint8),
        "rgb_gripper": rng.integers(0, 256, size=(gripper, gripper, 3), dtype=np.uint8),
        "depth_static": rng.random((static, static)).astype(np.float32),
        "depth_gripper": rng.random((gripper, gripper)).astype(np.float32),
    }


def make_calvin(root: Path, recordings=RECORDINGS, annotations=ANNOTATIONS, static=12, gripper=6) -> Path:
    root.mkdir(parents=True)
    for s, e in recordings:
        for fid in range(s, e + 1):
            np.savez(root / f"episode_{fid:07d}.npz", **frame_arrays(fid, static, gripper))
    np.save(root / "ep_start_end_ids.npy", np.array(recordings, dtype=np.int64))
    lang = {
        "language": {
            "ann": [a[3] for a in annotations],
            "task": [a[2] for a in annotations],
            "emb": np.ones((len(annotations), 1, 384), np.float32),
        },
        "info": {"indx": [(a[0], a[1]) for a in annotations], "episodes": []},
    }
    (root / "lang_annotations").mkdir()
    np.save(root / "lang_annotations" / "auto_lang_ann.npy", lang, allow_pickle=True)
    return root


def frames_of(root: Path, start: int, end: int) -> dict[str, np.ndarray]:
    frames = [dict(np.load(root / f"episode_{fid:07d}.npz")) for fid in range(start, end + 1)]
    return {k: np.stack([f[k] for f in frames]) for k in frames[0]}


def rewrite_frame(root: Path, fid: int, **changes) -> Path:
    path = root / f"episode_{fid:07d}.npz"
    data = dict(np.load(path))
    for k, v in changes.items():
        if v is None:
            del data[k]
        else:
            data[k] = v
    np.savez(path, **data)
    return path


def assert_episode_matches_frames(ep: Episode, root: Path, start: int, end: int) -> None:
    want = frames_of(root, start, end)
    assert set(ep.data) == set(SIX)
    for k in SIX:
        expected = want[k].astype(np.float32) if k not in ("rgb_static", "rgb_gripper") else want[k]
        assert ep.data[k].dtype == expected.dtype, k
        assert np.array_equal(ep.data[k], expected), k


# --- import --------------------------------------------------------------------------------------


def test_import_by_annotation(tmp_path):
    src = make_calvin(tmp_path / "calvin")
    store = import_calvin(src, tmp_path / "store", progress=False)
    assert isinstance(store, EpisodeStore)
    assert store.env == {"suite": "calvin", "source": str(src)}
    assert len(store) == len(ANNOTATIONS)
    assert sorted(store.fields) == sorted(SIX)  # depth keys skipped
    assert store.fields["rgb_static"].shape[1:] == (12, 12, 3)
    assert store.fields["rgb_gripper"].shape[1:] == (6, 6, 3)
    assert store.n_frames == sum(e - s + 1 for s, e, _, _ in ANNOTATIONS)
    for i, (s, e, task, instr) in enumerate(ANNOTATIONS):
        ep = store.episode(i)
        assert ep.info == {"task": task, "instruction": instr, "source": "calvin", "calvin_window": [s, e]}
        assert len(ep) == e - s + 1
        assert_episode_matches_frames(ep, src, s, e)


def test_import_by_recording_and_env(tmp_path):
    src = make_calvin(tmp_path / "calvin")
    env = {"suite": "calvin", "scene": "D"}
    store = import_calvin(src, tmp_path / "store", split_by="recording", env=env, progress=False)
    assert store.env == env
    assert len(store) == len(RECORDINGS)
    for i, (s, e) in enumerate(RECORDINGS):
        ep = store.episode(i)
        assert ep.info == {"task": None, "instruction": None, "source": "calvin", "calvin_window": [s, e]}
        assert_episode_matches_frames(ep, src, s, e)


def test_import_float32_frames_are_copied_exactly(tmp_path):
    src = make_calvin(tmp_path / "calvin", recordings=[(0, 3)], annotations=[(0, 3, "t", "do t")])
    for fid in range(4):
        rewrite_frame(src, fid, **{k: v for k, v in frame_arrays(100 + fid, 12, 6, np.float32).items()})
    store = import_calvin(src, tmp_path / "store", progress=False)
    for k in SIX:
        assert np.array_equal(store.fields[k], frames_of(src, 0, 3)[k]), k


def test_import_only_fields_present_in_all_frames(tmp_path):
    src = make_calvin(tmp_path / "calvin", recordings=[(0, 3)], annotations=[(0, 3, "t", "do t")])
    for fid in range(4):
        rewrite_frame(src, fid, rgb_gripper=None)
    store = import_calvin(src, tmp_path / "store", progress=False)
    assert sorted(store.fields) == sorted(set(SIX) - {"rgb_gripper"})


def test_import_resumes_an_interrupted_import(tmp_path):
    src = make_calvin(tmp_path / "calvin")
    dst = tmp_path / "store"
    full = import_calvin(src, dst, progress=False)
    n_frames = full.n_frames
    # simulate an interruption after the first episode: keep only its commit
    writer = EpisodeWriter(dst)
    writer.meta["n_episodes"] = 1
    writer.meta["n_frames"] = full.episodes[0]["end"]
    (dst / "meta.json").write_text(json.dumps(writer.meta))
    again = import_calvin(src, dst, progress=False)
    assert len(again) == len(ANNOTATIONS) and again.n_frames == n_frames
    for i, (s, e, _, _) in enumerate(ANNOTATIONS):
        assert_episode_matches_frames(again.episode(i), src, s, e)
    with pytest.raises(DatasetError, match="another import"):
        import_calvin(src, dst, split_by="recording", progress=False)


def test_import_refuses_non_empty_foreign_folder(tmp_path):
    src = make_calvin(tmp_path / "calvin")
    dst = tmp_path / "busy"
    dst.mkdir()
    (dst / "notes.txt").write_text("x")
    with pytest.raises(DatasetError, match="not an empty folder"):
        import_calvin(src, dst, progress=False)


def test_real_sizes_import_export_round_trip(tmp_path):
    src = make_calvin(
        tmp_path / "calvin",
        recordings=[(100, 105)],
        annotations=[(100, 105, "open_drawer", "open the drawer")],
        static=200,
        gripper=84,
    )
    store = import_calvin(src, tmp_path / "store", progress=False)
    assert store.fields["rgb_static"].shape == (6, 200, 200, 3)
    assert store.fields["rgb_gripper"].shape == (6, 84, 84, 3)
    assert_episode_matches_frames(store.episode(0), src, 100, 105)
    out = export_calvin(store, tmp_path / "out", progress=False)
    assert sorted(p.name for p in out.glob("*.npz")) == [f"episode_{i:07d}.npz" for i in range(6)]
    back = import_calvin(out, tmp_path / "back", progress=False)
    assert back.episode(0).info["instruction"] == "open the drawer"
    for k in SIX:
        assert np.array_equal(back.fields[k], store.fields[k]), k


# --- export --------------------------------------------------------------------------------------


def make_store(
    root: Path, lengths=(3, 5, 2), instructions=("open the drawer", None, "lift the block")
) -> EpisodeStore:
    writer = EpisodeWriter(root, env={"suite": "calvin", "scene": "D"})
    tasks = ["open_drawer", "move_slider_left", "lift_red_block_table"]
    for i, (n, instr) in enumerate(zip(lengths, instructions, strict=True)):
        frames = [frame_arrays(1000 * i + t, 10, 4, np.float32) for t in range(n)]
        data = {k: np.stack([f[k] for f in frames]) for k in SIX}
        writer.add(Episode(data, {"task": tasks[i], "instruction": instr, "seed": i}))
    return EpisodeStore(root)


def test_export_layout(tmp_path):
    store = make_store(tmp_path / "store")
    out = export_calvin(tmp_path / "store", tmp_path / "out", progress=False)
    assert out == tmp_path / "out"
    names = sorted(p.name for p in out.glob("episode_*.npz"))
    assert names == [f"episode_{i:07d}.npz" for i in range(10)]
    with zipfile.ZipFile(out / "episode_0000004.npz") as z:  # uncompressed, like CALVIN
        assert all(info.compress_type == zipfile.ZIP_STORED for info in z.infolist())
    frame = np.load(out / "episode_0000004.npz")
    assert sorted(frame.files) == sorted(SIX)
    for k in SIX:
        assert np.array_equal(frame[k], store.fields[k][4]), k
    ids = np.load(out / "ep_start_end_ids.npy")
    assert ids.tolist() == [[0, 2], [3, 7], [8, 9]]
    assert np.issubdtype(ids.dtype, np.integer)
    lang = np.load(out / "lang_annotations" / "auto_lang_ann.npy", allow_pickle=True).item()
    assert lang["language"]["ann"] == ["open the drawer", "lift the block"]
    assert lang["language"]["task"] == ["open_drawer", "lift_red_block_table"]
    assert [tuple(w) for w in lang["info"]["indx"]] == [(0, 2), (8, 9)]
    assert lang["info"]["episodes"] == []
    emb = lang["language"]["emb"]
    assert emb.shape == (2, 1, 384) and emb.dtype == np.float32 and not emb.any()


def test_export_window_annotates_the_last_frames(tmp_path):
    make_store(tmp_path / "store")
    out = export_calvin(tmp_path / "store", tmp_path / "out", window=2, progress=False)
    lang = np.load(out / "lang_annotations" / "auto_lang_ann.npy", allow_pickle=True).item()
    assert [tuple(w) for w in lang["info"]["indx"]] == [(1, 2), (8, 9)]
    with pytest.raises(ValueError, match="window"):
        export_calvin(tmp_path / "store", tmp_path / "out2", window=0, progress=False)


def test_export_statistics_yaml(tmp_path):
    store = make_store(tmp_path / "store")
    out = export_calvin(store, tmp_path / "out", progress=False)
    text = (out / "statistics.yaml").read_text()
    assert "act_min_bound:" in text and "act_max_bound:" in text
    yaml = pytest.importorskip("yaml")
    stats = yaml.safe_load(text)
    actions = np.asarray(store.fields["actions"], np.float64)
    assert np.allclose(stats["act_min_bound"], actions.min(0))
    assert np.allclose(stats["act_max_bound"], actions.max(0))
    robot = np.asarray(store.fields["robot_obs"], np.float64)
    (norm,) = stats["robot_obs"]
    assert norm["_target_"].endswith("NormalizeVector")
    assert np.allclose(norm["mean"], robot.mean(0)) and np.allclose(norm["std"], robot.std(0))
    assert len(stats["scene_obs"][0]["mean"]) == 24


def test_round_trip_store_export_import(tmp_path):
    store = make_store(tmp_path / "store")
    out = export_calvin(store, tmp_path / "out", progress=False)
    by_rec = import_calvin(out, tmp_path / "by_rec", split_by="recording", progress=False)
    assert [(ep["start"], ep["end"]) for ep in by_rec.episodes] == [
        (ep["start"], ep["end"]) for ep in store.episodes
    ]
    for k in SIX:
        assert by_rec.fields[k].dtype == store.fields[k].dtype
        assert np.array_equal(by_rec.fields[k], store.fields[k]), k
    by_ann = import_calvin(out, tmp_path / "by_ann", progress=False)
    assert [ep.info["instruction"] for ep in by_ann] == ["open the drawer", "lift the block"]
    assert [ep.info["task"] for ep in by_ann] == ["open_drawer", "lift_red_block_table"]
    for ours, src_index in zip(by_ann, (0, 2), strict=True):
        theirs = store.episode(src_index)
        for k in SIX:
            assert np.array_equal(ours.data[k], theirs.data[k]), k


def test_export_requires_calvin_fields(tmp_path):
    writer = EpisodeWriter(tmp_path / "store")
    writer.add(Episode({"actions": np.zeros((2, 7), np.float32), "robot_obs": np.zeros((2, 15), np.float32)}))
    with pytest.raises(DatasetError) as exc:
        export_calvin(tmp_path / "store", tmp_path / "out", progress=False)
    for name in ("rel_actions", "scene_obs", "rgb_static", "rgb_gripper"):
        assert name in str(exc.value)
    assert not (tmp_path / "out").exists()


def test_export_checks_field_shapes_and_destination(tmp_path):
    writer = EpisodeWriter(tmp_path / "bad")
    data = {k: v[None] for k, v in frame_arrays(0, 8, 4, np.float32).items() if k in SIX}
    data["scene_obs"] = np.zeros((1, 20), np.float32)
    writer.add(Episode(data))
    with pytest.raises(DatasetError, match=r"scene_obs.*\(20,\).*\(24,\)"):
        export_calvin(tmp_path / "bad", tmp_path / "out", progress=False)
    make_store(tmp_path / "store")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "episode_0000000.npz").write_bytes(b"")
    with pytest.raises(DatasetError, match="not an empty folder"):
        export_calvin(tmp_path / "store", tmp_path / "busy", progress=False)


# --- errors on bad CALVIN folders ----------------------------------------------------------------


def import_error(src: Path, tmp_path: Path, **kw) -> str:
    with pytest.raises(DatasetError) as exc:
        import_calvin(src, tmp_path / "store", progress=False, **kw)
    return str(exc.value)


def test_error_missing_frame_file(tmp_path):
    src = make_calvin(tmp_path / "calvin")
    (src / "episode_0000022.npz").unlink()
    msg = import_error(src, tmp_path, split_by="recording")
    assert "episode_0000022.npz" in msg and "ep_start_end_ids.npy" in msg and "missing" in msg
    assert not (tmp_path / "store").exists()  # checked before anything is written


def test_error_annotation_window_without_frames(tmp_path):
    anns = [*ANNOTATIONS, (40, 43, "open_drawer", "open it")]
    src = make_calvin(tmp_path / "calvin", annotations=anns)
    msg = import_error(src, tmp_path)
    assert "auto_lang_ann.npy" in msg and "info.indx[3]" in msg and "[40, 43]" in msg
    assert "episode_0000040.npz" in msg
    assert not (tmp_path / "store").exists()


def test_error_missing_key_in_a_frame(tmp_path):
    src = make_calvin(tmp_path / "calvin")
    rewrite_frame(src, 8, rel_actions=None)
    msg = import_error(src, tmp_path)
    assert "episode_0000008.npz" in msg and "'rel_actions'" in msg and "missing" in msg


def test_error_key_missing_in_the_first_frame_only(tmp_path):
    src = make_calvin(tmp_path / "calvin")
    rewrite_frame(src, 6, scene_obs=None)  # first frame of the first annotation
    msg = import_error(src, tmp_path)
    assert "episode_0000006.npz" in msg and "'scene_obs'" in msg and "missing" in msg


def test_error_wrong_shape(tmp_path):
    src = make_calvin(tmp_path / "calvin")
    rewrite_frame(src, 9, robot_obs=np.zeros(14))
    msg = import_error(src, tmp_path)
    assert "episode_0000009.npz" in msg and "'robot_obs'" in msg and "(14,)" in msg and "(15,)" in msg


def test_error_wrong_image_size_and_dtype(tmp_path):
    src = make_calvin(tmp_path / "calvin")
    rewrite_frame(src, 7, rgb_static=np.zeros((12, 10, 3), np.uint8))
    msg = import_error(src, tmp_path)
    assert (
        "episode_0000007.npz" in msg
        and "'rgb_static'" in msg
        and "(12, 10, 3)" in msg
        and "(12, 12, 3)" in msg
    )
    src2 = make_calvin(tmp_path / "calvin2")
    rewrite_frame(src2, 7, rgb_gripper=np.zeros((6, 6, 3), np.float32))
    msg = import_error(src2, tmp_path / "b")
    assert "episode_0000007.npz" in msg and "'rgb_gripper'" in msg and "uint8" in msg and "float32" in msg


def test_error_missing_lang_annotations(tmp_path):
    src = make_calvin(tmp_path / "calvin")
    (src / "lang_annotations" / "auto_lang_ann.npy").unlink()
    msg = import_error(src, tmp_path)
    assert "lang_annotations/auto_lang_ann.npy" in msg and "missing" in msg


def test_error_missing_ep_start_end_ids_and_bad_lang(tmp_path):
    src = make_calvin(tmp_path / "calvin")
    (src / "ep_start_end_ids.npy").unlink()
    assert "ep_start_end_ids.npy" in import_error(src, tmp_path, split_by="recording")
    src2 = make_calvin(tmp_path / "calvin2")
    lang = np.load(src2 / "lang_annotations" / "auto_lang_ann.npy", allow_pickle=True).item()
    del lang["info"]["indx"]
    np.save(src2 / "lang_annotations" / "auto_lang_ann.npy", lang, allow_pickle=True)
    msg = import_error(src2, tmp_path / "b")
    assert "auto_lang_ann.npy" in msg and "info.indx" in msg


# --- command line --------------------------------------------------------------------------------


def test_cli_import_export(tmp_path, capsys):
    src = make_calvin(tmp_path / "calvin")
    assert main(["import", str(src), str(tmp_path / "store"), "--quiet"]) == 0
    assert "imported 3 episodes" in capsys.readouterr().out
    assert main(["export", str(tmp_path / "store"), str(tmp_path / "out"), "--quiet"]) == 0
    assert (tmp_path / "out" / "ep_start_end_ids.npy").exists()
    assert main(["import", str(tmp_path / "nowhere"), str(tmp_path / "s2"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "nowhere" in err and "\n" not in err


def test_cli_module_bad_input_exits_2(tmp_path):
    src = make_calvin(tmp_path / "calvin")
    (src / "ep_start_end_ids.npy").unlink()
    proc = subprocess.run(
        [sys.executable, "-m", "trainer.data.calvin_layout", "import", str(src), str(tmp_path / "store")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "ep_start_end_ids.npy" in proc.stderr


def test_import_warns_about_windows_across_recordings(tmp_path):
    # frame ids 12 and 13 exist, but belong to two recordings
    src = make_calvin(
        tmp_path / "calvin", recordings=[(0, 12), (13, 15)], annotations=[(10, 14, "t", "do t")]
    )
    with pytest.warns(UserWarning, match=r"not inside a single recording"):
        store = import_calvin(src, tmp_path / "store", progress=False)
    assert len(store) == 1 and len(store.episode(0)) == 5
