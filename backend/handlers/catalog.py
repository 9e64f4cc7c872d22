"""Public, read-only documents: supported platforms and boards, and the OpenAPI description."""


from mpfleet.boards import catalog, platforms

from .. import openapi
from ..responses import json_response


async def list_platforms(request):
    return json_response({"data": platforms()})


async def list_boards(request):
    boards = sorted(catalog().values(), key=lambda b: b.board["id"])
    return json_response({"data": [_board(b) for b in boards]})


async def openapi_document(request):
    return json_response(openapi.document())


def _board(b):
    return {
        **b.board,
        "platform": b.platform,
        "chip": b.chip,
        "flash_size": b.flash_size,
        "flash_offset": b.flash_offset,
        "pins": b.pins,
        "ota": list(b.ota),
    }
