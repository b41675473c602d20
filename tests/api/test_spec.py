import pytest

from wam.api.spec import parse_fleet


def test_counts_and_ids_name_what_each_robot_is():
    robots = parse_fleet("metaworld/reach-v3*3, metaworld/drawer-open-v3,dream/runs/wam_k3*2")
    assert [r.robot_id for r in robots] == ["reach-v3-0", "reach-v3-1", "reach-v3-2", "drawer-open-v3-0",
                                            "dream-wam_k3-0", "dream-wam_k3-1"]
    assert robots[0].env_id == "metaworld/reach-v3" and robots[0].task == "reach-v3"
    assert robots[-1].env_id == "dream/runs/wam_k3" and robots[-1].task is None


def test_the_same_task_twice_keeps_counting():
    assert [r.robot_id for r in parse_fleet("metaworld/reach-v3,metaworld/reach-v3*2")] == ["reach-v3-0", "reach-v3-1", "reach-v3-2"]


@pytest.mark.parametrize("spec, message", [("", "names no robots"), ("reach-v3*2", "<family>/<name>"),
                                           ("metaworld/reach-v3*0", "at least 1"), ("metaworld/fly-v3", "unknown Meta-World task"),
                                           ("metaworld/reach-v3*2000", "at most")])
def test_bad_specs_say_which_item(spec, message):
    with pytest.raises(ValueError, match=message):
        parse_fleet(spec)
