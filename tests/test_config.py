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
