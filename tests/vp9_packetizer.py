"""A VP9 RTP packetizer written from RFC 9628, for tests only.

It plays the sender the recorder has no captured sample of: Chrome's flexible mode with
reference indices, several spatial layer frames per picture, scalability structures. It is
written independently of recorder/codecs/vp9.py (which it must not import) so that a
round trip through both checks one reading of the RFC against another.

RFC 9628 section 4.2: every packet starts with the descriptor byte |I|P|L|F|B|E|V|Z|, then
  I: picture ID, 7 bits (M=0) or 15 bits (M=1)
  L: layer indices |TID:3|U|SID:3|D|, plus TL0PICIDX in non-flexible mode (F=0)
  F and P: 1-3 reference indices |P_DIFF:7|N|, N=1 when another follows
  V: scalability structure |N_S:3|Y|G|-|-|-|, (WIDTH:16, HEIGHT:16) per layer when Y,
     N_G and N_G entries |TID:3|U|R:2|-|-| + R P_DIFF bytes when G
Section 4.4 (and 4.5 for the marker): a layer frame spans packets from B=1 to E=1, the marker
bit is set on the last packet of the picture, SS rides on the first packet of a keyframe.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

# RFC 9628 section 4.2.1: one picture of a picture group (TID, U, P_DIFFs).
PictureGroupEntry = tuple[int, bool, tuple[int, ...]]


@dataclass(frozen=True)
class LayerFrame:
    """One spatial layer frame of a picture and the descriptor fields describing it."""

    data: bytes
    sid: int = 0
    tid: int = 0
    switching_up: bool = False  # U
    inter_layer: bool = False  # D: predicted from the layer below in this picture
    not_upper_reference: bool = False  # Z
    inter_picture: bool = False  # P: predicted from an earlier picture
    p_diffs: tuple[int, ...] = ()  # flexible mode: picture ID differences of its references


class Vp9Packetizer:
    """Turns pictures (lists of layer frames) into (payload, marker) pairs of at most `mtu`
    bytes each, numbering pictures and temporal-layer-0 pictures as RFC 9628 asks."""

    def __init__(
        self,
        mtu: int,
        *,
        flexible: bool = True,
        picture_id_bits: int = 15,
        first_picture_id: int = 0,
        layer_indices: bool = True,
        ss_on_keyframes: bool = True,
        resolutions: Sequence[tuple[int, int]] = (),
        picture_group: Sequence[PictureGroupEntry] | None = None,
        first_tl0_pic_idx: int = 0,
    ) -> None:
        if picture_id_bits not in (0, 7, 15):
            raise ValueError("picture IDs are 7 or 15 bits, or absent (0)")
        self.mtu = mtu
        self.flexible = flexible
        self.picture_id_bits = picture_id_bits
        self.picture_id = first_picture_id
        self.layer_indices = layer_indices
        self.ss_on_keyframes = ss_on_keyframes
        self.resolutions = tuple(resolutions)
        self.picture_group = None if picture_group is None else tuple(picture_group)
        self.tl0_pic_idx = first_tl0_pic_idx
        self._pictures = 0

    def picture(
        self, layers: Sequence[LayerFrame] | bytes, *, keyframe: bool = False
    ) -> list[tuple[bytes, bool]]:
        """The payloads of one picture (all its layer frames in order) and their marker bits."""
        if isinstance(layers, bytes):
            layers = [LayerFrame(layers, inter_picture=not keyframe)]
        if not layers:
            raise ValueError("a picture has at least one layer frame")
        # TL0PICIDX counts the pictures of temporal layer 0; pictures above it repeat it.
        if self._pictures and layers[0].tid == 0:
            self.tl0_pic_idx = (self.tl0_pic_idx + 1) & 0xFF
        packets: list[tuple[bytes, bool]] = []
        for number, layer in enumerate(layers):
            ss = b""
            if number == 0 and keyframe and self.ss_on_keyframes:
                ss = self._ss(len(layers))
            packets += self._layer_packets(layer, ss)
        payload, _ = packets[-1]
        packets[-1] = (payload, True)
        self._pictures += 1
        if self.picture_id_bits:
            self.picture_id = (self.picture_id + 1) % (1 << self.picture_id_bits)
        return packets

    def _descriptor(self, layer: LayerFrame, begins: bool, ends: bool, ss: bytes) -> bytes:
        flags = 0
        out = bytearray()
        if self.picture_id_bits == 15:
            flags |= 0x80
            out += bytes([0x80 | self.picture_id >> 8, self.picture_id & 0xFF])
        elif self.picture_id_bits == 7:
            flags |= 0x80
            out.append(self.picture_id)
        if layer.inter_picture:
            flags |= 0x40
        if self.layer_indices:
            flags |= 0x20
            out.append(
                layer.tid << 5 | layer.switching_up << 4 | layer.sid << 1 | layer.inter_layer
            )
            if not self.flexible:
                out.append(self.tl0_pic_idx)
        if self.flexible:
            flags |= 0x10
            if layer.inter_picture:
                if not 1 <= len(layer.p_diffs) <= 3:
                    raise ValueError("an inter-picture predicted frame has 1-3 P_DIFFs")
                for number, p_diff in enumerate(layer.p_diffs):
                    more = number < len(layer.p_diffs) - 1
                    out.append(p_diff << 1 | more)
        if begins:
            flags |= 0x08
        if ends:
            flags |= 0x04
        if ss:
            flags |= 0x02
            out += ss
        if layer.not_upper_reference:
            flags |= 0x01
        return bytes([flags]) + bytes(out)

    def _ss(self, spatial_layers: int) -> bytes:
        resolutions = self.resolutions
        count = len(resolutions) if resolutions else spatial_layers
        head = (count - 1) << 5
        body = bytearray()
        if resolutions:
            head |= 0x10
            for width, height in resolutions:
                body += width.to_bytes(2, "big") + height.to_bytes(2, "big")
        if self.picture_group is not None:
            head |= 0x08
            body.append(len(self.picture_group))
            for tid, switching_up, p_diffs in self.picture_group:
                body.append(tid << 5 | switching_up << 4 | len(p_diffs) << 2)
                body += bytes(p_diffs)
        return bytes([head]) + bytes(body)

    def _layer_packets(self, layer: LayerFrame, ss: bytes) -> list[tuple[bytes, bool]]:
        data = layer.data
        packets = []
        offset = 0
        while True:
            begins = offset == 0
            # The descriptor's size does not depend on E, so measure it with E unset.
            size = len(self._descriptor(layer, begins, False, ss if begins else b""))
            room = self.mtu - size
            if room <= 0:
                raise ValueError(f"an MTU of {self.mtu} leaves no room after the descriptor")
            chunk = data[offset : offset + room]
            offset += len(chunk)
            ends = offset >= len(data)
            descriptor = self._descriptor(layer, begins, ends, ss if begins else b"")
            packets.append((descriptor + chunk, False))
            if ends:
                return packets
