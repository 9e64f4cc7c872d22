"""`mpfleet user add` and `mpfleet token create`: API accounts, straight on the data directory."""

from . import datadir


def add_parsers(commands):
    user = commands.add_parser("user", help="manage API users").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    add = user.add_parser("add", help="create a user and print its API token")
    add.add_argument("name")
    datadir.add_option(add)
    add.set_defaults(run=add_user)

    token = commands.add_parser("token", help="manage API tokens").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    create = token.add_parser("create", help="print a new API token for an existing user")
    create.add_argument("user")
    datadir.add_option(create)
    create.set_defaults(run=create_token)


def add_user(args):
    async def work(storage):
        _, token = await storage.users.create(args.name)
        return token

    print(datadir.with_storage(args.data, work))


def create_token(args):
    print(datadir.with_storage(args.data, lambda storage: storage.users.create_token(args.user)))
