"""userlist sections: users, groups written on either side, and the fetches using them."""

from __future__ import annotations

from collections.abc import Callable

from pyxlb.config import Config, Where
from pyxlb.config.model import Group, User

Parse = Callable[..., Config]


def test_users_and_groups(parse: Parse) -> None:
    config = parse("""\
        userlist staff
            group admins users alice,bob
            group ops
            user alice password $6$salt$hash
            user bob insecure-password b0b groups ops
            user carol insecure-password c groups ops,admins
            user dave
    """)
    staff = config.userlists["staff"]
    assert staff.users == {
        "alice": User(name="alice", password="$6$salt$hash", where=Where("t.cfg", 4, 5)),
        "bob": User(name="bob", password="b0b", insecure=True, groups=("ops",),
                    where=Where("t.cfg", 5, 5)),
        "carol": User(name="carol", password="c", insecure=True, groups=("ops", "admins"),
                      where=Where("t.cfg", 6, 5)),
        # No password: the user can never log in, as in HAProxy.
        "dave": User(name="dave", password=None, where=Where("t.cfg", 7, 5)),
    }
    # Members from the group's line and from the users' lines.
    assert staff.groups == {
        "admins": Group(name="admins", users=("alice", "bob", "carol"),
                        where=Where("t.cfg", 2, 5)),
        "ops": Group(name="ops", users=("bob", "carol"), where=Where("t.cfg", 3, 5)),
    }


def test_http_auth_fetches_name_their_userlist(parse: Parse) -> None:
    front = parse("""\
        userlist staff
            group admins users root
            user root insecure-password x
        frontend f
            mode http
            bind :80
            acl user http_auth(staff)
            acl admin http_auth_group(staff) admins
    """).frontends["f"]
    user, admin = (front.acls[n].matches[0] for n in ("user", "admin"))
    assert (user.fetch.name, user.fetch.args, user.method) == ("http_auth", ("staff",), "bool")
    assert (admin.fetch.args, admin.method, admin.patterns) == (("staff",), "group", ("admins",))


def test_userlist_errors(error_lines: Callable[..., list[str]]) -> None:
    assert error_lines("""\
        userlist
        userlist bad/name
        userlist ok extra
        userlist L
            user
            user bob password
            user carol frobnicate x
            group g members a
            role x
    """) == [
        "t.cfg:1:1: 'userlist' expects <name>",
        "t.cfg:2:10: 'userlist' name: character '/' is not permitted in name 'bad/name' (use "
        "letters, digits, '-', '_', '.' and ':')",
        "t.cfg:3:13: unexpected argument 'extra' after the userlist name",
        "t.cfg:5:5: 'user' expects <name> [password <hash> | insecure-password <password>] "
        "[groups <group>,...]",
        "t.cfg:6:14: 'password' expects a value",
        "t.cfg:7:16: unexpected argument 'frobnicate': 'user' takes 'password', "
        "'insecure-password' and 'groups'",
        "t.cfg:8:13: unexpected argument 'members': 'group' takes 'users <user>,...'",
        "t.cfg:9:5: unknown keyword 'role' in userlist 'L'",
    ]


def test_proxy_keywords_are_not_userlist_keywords(error_lines: Callable[..., list[str]]) -> None:
    assert error_lines("userlist L\n  mode http\n") == [
        "t.cfg:2:3: 'mode' is not allowed in userlist 'L'; it belongs in a defaults, frontend, "
        "backend or listen section"]
