"""The `userlist` section: users and groups for `http_auth(NAME)` and `http-request auth`.

    userlist TrustedPeople
        group admins users bob
        user bob insecure-password password123
        user alice password $6$salt$hash groups admins

Membership may be written on either side; names on both sides must exist.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pyxlb.config.errors import ConfigError, Where
from pyxlb.config.keywords import Registry, Statement
from pyxlb.config.lexer import Word
from pyxlb.config.model import Group, User, Userlist
from pyxlb.config.values import parse_name


@dataclass
class _GroupDraft:
    name: str
    users: list[tuple[str, Where]]
    where: Where


@dataclass
class UserlistDraft:
    name: str
    where: Where
    users: dict[str, User] = field(default_factory=dict)
    groups: dict[str, _GroupDraft] = field(default_factory=dict)
    # Where each user's `groups` list was written, to name it in errors.
    user_groups_at: dict[str, Where] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"userlist '{self.name}'"


USERLIST: Registry[UserlistDraft] = Registry("a userlist section")


def _names(st: Statement, word: Word) -> list[str]:
    names = word.text.split(",")
    for name in names:
        if not name:
            raise st.error(f"'{word.text}': empty name in the list", word)
        st.parse(Word(name, word.col), parse_name, name=st.keyword)
    return names


@USERLIST.keyword("user", "<name> [password <hash> | insecure-password <password>] "
                  "[groups <group>,...]", args=(1, None))
def _user(st: Statement, u: UserlistDraft) -> None:
    name_word, *words = st.args
    name = st.parse(name_word, parse_name, name="user")
    password: str | None = None
    insecure = False
    groups: list[str] = []
    groups_at = st.where
    i = 0
    while i < len(words):
        option = words[i]
        if option.text not in ("password", "insecure-password", "groups"):
            raise st.error(f"unexpected argument '{option.text}': 'user' takes 'password', "
                           "'insecure-password' and 'groups'", option)
        if i + 1 == len(words):
            raise st.error(f"'{option.text}' expects a value", option)
        value = words[i + 1]
        if option.text == "groups":
            groups += _names(st, value)
            groups_at = st.at(value)
        else:
            if password is not None:
                raise st.error("a user has one password", option)
            password = value.text
            insecure = option.text == "insecure-password"
        i += 2
    if name in u.users:
        st.warn(f"ignoring duplicated user '{name}' in {u.label}", name_word)
        return
    u.user_groups_at[name] = groups_at
    u.users[name] = User(name=name, password=password, insecure=insecure, groups=tuple(groups),
                         where=st.where)


@USERLIST.keyword("group", "<name> [users <user>,...]", args=(1, 3))
def _group(st: Statement, u: UserlistDraft) -> None:
    name_word, *words = st.args
    name = st.parse(name_word, parse_name, name="group")
    users: list[tuple[str, Where]] = []
    if words:
        if words[0].text != "users" or len(words) != 2:
            raise st.error(f"unexpected argument '{words[0].text}': 'group' takes "
                           "'users <user>,...'", words[0])
        users = [(user, st.at(words[1])) for user in _names(st, words[1])]
    if name in u.groups:
        st.warn(f"ignoring duplicated group '{name}' in {u.label}", name_word)
        return
    u.groups[name] = _GroupDraft(name, users, st.where)


def build_userlist(u: UserlistDraft, errors: list[ConfigError]) -> Userlist:
    """The Userlist, with each group's members from both sides; unknown names are errors."""
    members: dict[str, list[str]] = {name: [] for name in u.groups}
    for group in u.groups.values():
        for user, where in group.users:
            if user not in u.users:
                errors.append(ConfigError(f"{u.label}: group '{group.name}' lists user "
                                          f"'{user}', which is not declared", where))
            elif user not in members[group.name]:
                members[group.name].append(user)
    for user in u.users.values():
        for name in user.groups:
            if name not in u.groups:
                errors.append(ConfigError(f"{u.label}: user '{user.name}' is in group "
                                          f"'{name}', which is not declared",
                                          u.user_groups_at[user.name]))
            elif user.name not in members[name]:
                members[name].append(user.name)
    groups = {name: Group(name=name, users=tuple(members[name]), where=g.where)
              for name, g in u.groups.items()}
    return Userlist(name=u.name, users=dict(u.users), groups=groups, where=u.where)
