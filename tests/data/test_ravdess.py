import pytest

from cfnsr.data.ravdess import RavdessNameError, av_speech_names, parse_name


def test_parse_name_fields_and_label():
    n = parse_name("Actor_24/01-01-05-02-01-02-24.mp4")
    assert n.fields == (1, 1, 5, 2, 1, 2, 24)
    assert n.label == 4 and n.actor == 24 and n.is_av_speech and not n.is_male
    assert n.stem == "01-01-05-02-01-02-24"


@pytest.mark.parametrize("actor", [4, 14, 24])
def test_actor_ids_ending_in_4_survive(actor):
    # The public code's name.strip(".mp4") turned -24.mp4 into actor 2.
    assert parse_name(f"01-01-03-01-01-01-{actor:02d}.mp4").actor == actor


@pytest.mark.parametrize("name, reason", [
    ("01-01-03-01-01-01.mp4", "7 dash-separated fields"),
    ("01-01-09-01-01-01-01.mp4", "emotion=09"),
    ("01-01-03-01-01-01-25.mp4", "actor=25"),
    ("01-01-01-02-01-01-01.mp4", "neutral"),
    ("01-01-3-01-01-01-01.mp4", "two digits"),
])
def test_invalid_names_say_why(name, reason):
    with pytest.raises(RavdessNameError, match=reason) as err:
        parse_name(name)
    assert name.split(".")[0] in str(err.value)


def test_sixty_av_speech_clips_per_actor_with_real_class_balance():
    names = av_speech_names(7)
    assert len(names) == len(set(names)) == 60
    counts = [sum(n.emotion == e for n in names) for e in range(1, 9)]
    assert counts == [4, 8, 8, 8, 8, 8, 8, 8]
    assert all(n.actor == 7 and n.is_av_speech for n in names)
