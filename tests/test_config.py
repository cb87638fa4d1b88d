import pytest

from pix2pix.config import TrainConfig, apply_overrides, from_dict, to_dict


def test_overrides_are_typed():
    cfg = apply_overrides(TrainConfig(), ["model.norm=instance", "lr=1e-3", "data.flip=false",
                                          "max_steps=10", "data.load_size=none"])
    assert cfg.model.norm == "instance" and cfg.lr == 1e-3 and cfg.data.flip is False
    assert cfg.max_steps == 10 and cfg.data.load_size is None


@pytest.mark.parametrize("item,msg", [
    ("lr=fast", "lr='fast' is not a valid float"),
    ("model.colour=red", "unknown key 'model.colour'"),
    ("batch_size=1.5", "batch_size='1.5' is not a valid int"),
    ("nokey", "must look like key=value"),
    ("data.flip=maybe", "data.flip='maybe' is not a valid bool"),
])
def test_bad_overrides_name_the_value(item, msg):
    with pytest.raises(ValueError, match=msg.replace("(", r"\(").replace(".", r"\.")):
        apply_overrides(TrainConfig(), [item])


def test_round_trip_and_unknown_keys():
    cfg = TrainConfig()
    assert from_dict(TrainConfig, to_dict(cfg)) == cfg
    with pytest.raises(ValueError, match="unknown config key"):
        from_dict(TrainConfig, {"epochz": 3})


def test_a_saved_run_from_before_lazy_r1_resumes_with_r1_on_every_step():
    from pix2pix.config import TrainConfig, saved_train_config, to_dict

    before = to_dict(TrainConfig(r1_weight=0.1))
    del before["r1_every"]  # config.json of a run written before the field existed
    assert saved_train_config(before).r1_every == 1
    assert saved_train_config(to_dict(TrainConfig(r1_weight=0.1))).r1_every == 16
    assert saved_train_config(to_dict(TrainConfig(r1_weight=0.1, r1_every=4))).r1_every == 4
