"""AV1 over RTP: aggregation header, OBU elements and fragments, OBU headers, the sequence
header and the start of the frame header, av1C, and round trips through a spec packetizer.

Real bytes were produced once with FFmpeg 5.1 (libaom 3.6, SVT-AV1 1.4.1) and embedded:
- `SMALL_TUS`: the first three temporal units of
  `ffmpeg -f lavfi -i testsrc2=size=160x120:rate=30 -t 0.3 -c:v libaom-av1 -cpu-used 8
  -usage realtime -g 30 -b:v 100k small.ivf` (IVF frames: Low overhead format, TD first).
- `REAL_SEQUENCE_HEADERS` / `REAL_FRAME_HEADERS`: the sequence header OBU and the first 24
  bytes of the key frame's and the next frame's OBU_FRAME payload of 0.1 s of the same source
  encoded with the options named in each entry (`-pix_fmt yuv420p10le`, `yuv444p`, `yuv422p10le`,
  `gray`, `yuvj420p -color_primaries bt709 -color_trc bt709 -colorspace bt709`,
  `-error-resilience default`, `-aom-params timing-info=model`, `-still-picture 1 -frames:v 1`,
  `-c:v libsvtav1`, 320x240 for `libaom-320x240`). Expected field values were checked against
  FFmpeg's own parser (`-bsf:v trace_headers`) and the av1C FFmpeg's MP4 muxer writes.
Everything else is invented from the specs (AOM AV1 RTP payload format v1.0, AV1 bitstream
spec 5.3/5.5/5.9.2, AV1-ISOBMFF 2.3.3).
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Callable, Sequence
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from recorder.codecs.av1 import (
    KEY_FRAME,
    Av1Depacketizer,
    FrameHeader,
    SequenceHeader,
    _uvlc,
    av1c_record,
    encode_leb128,
    packet_elements,
    parse_frame_header,
    parse_sequence_header,
    read_leb128,
    split_obus,
)
from recorder.codecs.bits import BitReader
from recorder.errors import DepacketizeError
from recorder.media import CodecConfig, Frame
from tests.av1_packetizer import low_overhead_obus, packetize, pion_packetize

CLOCK_RATE = 90000
FUZZ = settings(max_examples=300, deadline=None)

_SMALL = base64.b64decode(
    """
AAAXwxIACgoAAAADtP9za+QBMrIvEACAIAAAgAAA3UrC6ie//K43Ug0D+2Svea3ONEgIiefSoLYdVc/I4zTs8qeK
I0ZdyF3ImDfalCPrWeCAJyzE0ybUUonxPwdl+hQEBKJP6q8yeU/B9///+og7/3iHaiIM0Rt9EOhhWInrtq2I3Eku
SSoLt5L9r1Ul5Z6jqJgRMsVFIwQqJM2pIf+LLpOYqbnbRKBaLYBnXPscBl85aqrHt4+T4Tg/J1VDtIao+JFcOOax
REJ9O4DOJ30ymC2Oc6MtlT1QXAvtw+JUDsyurW0eT8EmdlpGj2L7OOPFsvP5UevWw2GDFD6DWAojdmMJgt6i2QYY
6yv4VE5kpYRT08dlm3/mPh5MgXuR1pdtcuEAEKsJ7WsstK1FKq4g65ud3TCWkiz4F0dnVkpnpP65TdMFxABpyD1D
Ll7DkX1FU45ZmoOd0iXGEfKS9FLPEoSBr633l5mzR6Q4HcqH+CefuffF+8O0AelbuW8D7RvXbMsl1btmXQ+4il9j
mRtjRX5ZyNJ0I1W7VE0wAxfSimR57NA2DSs/ryh7NnaqlO4i/GoDb05hJFCj1ixNFMYQHMs0XX+7W+RtUeAkHFiz
jJ2xcWD/fDksgEKkvmwwkuciyRAXQhv0gzLFiHXDWeB81FC+7/jzpGIT74xLAfal9pliKDRSF7+T2R0YzdjB2gDe
tIerZ1oJ4Z/aDyqeirIiKFafo6+IfdVhsxCWUVqnYeLi3jWDpznZD9EPf8YPzFCwsmjJoPAL2eJDUhmVg1ZJrVPP
Xgk3o855Jaq2LgDGqNubHK9omOyHz+QrzNuq2sFLnbok3NO1aEC1Cos9X8fc+jz1XldXhwC1WDjr5rz0A4G9mbRI
dtoGxHtQB8cY46VpSKYhDRwZjy46+txn12BEkBvywaDue92WYcnSIrPTg3YuP94VPcun+2gFccGB1hh82F5nDGX0
iO4KNd/D//5NbZelagaAyrODJ16p1t6LIwLy0wd39V5QqzR900vRB306MskVygs7X+BNrdGYm6Zhjnp6Ilc98teA
5dSR6ECi3541JBE17Bgn8MY0yezHrDPyGxapWeJ45E8+gufCuyijD3T1HFa0xUxFvZ9LfJfaqBvxY882JUKJv4a5
X3FBGW0F7y1CJkdmP8LK2UGzSieLISWKt4JIDq193SIMtkkyGVgFsJW+EznEWtnDyqSuZRS2NyQBvtpF3fh5Va8X
iojtTNSoOOrI4a88l/whPc6XzAmwF7z14XQpgRuarXfVmyDA/lNeuatnhw1Bukid6bXjOJh74bixD+lK/hw8LKFm
FyfDj+5osW470STsZnnSu7MNJvnXNgjr0W7MoKpWUae0F/3AcPhRtCcOSHyRJvdczxsajVGBbtrXXdJTUk4uXgjD
THErkVCkwTP67pGtEhBtQiwY+X+biOG9yFZWOfMaunn1/DURjnLHvyy4YH+O/AvdyYcSeIb5t6ra8JhqP63uHUr/
se3nBbxU58//aPSs3SN9s+TUG188gUKOHPbgjoImw+VUrwzou8VmWAbgNsa7wJXVfyoAIpAviHcp/SHGPP9ak8Sn
OrbE6nSE5c+noG2yc2hSwldDiRWwZqTXH3i/Tag/M1BHbWQCZ+kUwqaaAfr0SWEQB0AGkQompvhUlThsCnssvRDt
DzJXRVJTCzlZWh+46mtgi4G6NJSrH4IHkThMl+cgLWw4ZbvvstfoJwsZeW1Mpgvw77BT6wiJpMyrcF8esHJmekZF
vFwORM3tDGMqebfQ4TfmGepd6ltTWkswjlCxaBa8bw+B69kJMC9bVp+IKI6SOdr/0wi96zTIEH+yUsqZ69FHmN7F
vUKcaJb83EeaiyDbcrtN5PGWegZWZPEdQHnP/NV3gjeKhrhu44BJON+W0/mE8CzjBfigN9v/H0YTGcKBT+nsJ/ob
HvZY6rEcZizRAOexDTk6Y8jNxfQkA9WpoBuCEYzfRqQIhzhW/vs0YNOSZQtvW6hzJJTONAjtIIoAzvNR8O/WgTGW
ZkR21OZJh67KAcnOKBQY5S4WlhH6Ppw0L6EfBnRz+6rQRxJuEZex71FTx3kxWKeneneneneneuZj7XGfOjBY/xgc
NMMYJFv/ADxphXZ5zIoKVnGxRVinV/LTyx4FqsTSATWxzJPsIf6L6CsGfXKuSpGmegCnYBsOnRNICXpL6EuNIjVY
TliyePKp8SyLY9ifkcXnAzh0IoiXwi+vcPFDRKbS1CRkE82jyQmc/pBMBMmcrKPG86MpD/7/OQJzxDJvgT2gnwz7
lpiSH4FtbijY0TbY8RD7Ln44TbSN4DFYfpu1yr7l8Yar25yudSWnTUgpw3KlS1eGL05vDFT41K7ZXPgw+cD8Ig3h
v69vrSas5HpMbiCCP6guWb/97/f3v1D8Z2GSdl+xzUzYpFWQ2ZARCS14g8A7i5rmGR+YFGH/R3ZF/Dtd5E0uCYzt
dFNro3ryqekxLlnoHhrtwu978TUcXgtRyIPIjqiSbAfq0EMgpwuVb7VXoU+PH2Rc3+mjpuwGXwnt5UEvUtsqjNFK
wTIcC5BxNiRr9+R+nTB0nppSWqE4nSC5XfH/ZIVO8ZCl7CmEVkfGxiFvn2tuG0VwWmuoxD9fc21id7hANrmR6rSQ
2LncjwpiqfAlnWOeRpYKZIDMo11HZUxyV4b0QpIleAUa0dfsa1EEDq/57oyi+EvvZPXHs8jWfSs1MXcsVz/woKUm
pL19ybZ+KAD0Z/lnslLr6x1L+QZcx9xHkNygayLTXN1MDVFNzRguNUiYpT+rxXmA6xP/5YHu5knpbuE3pb8w6glZ
2QvSSQaWfjopZKboqPsAFPWHckgiyUMUailFcaCMkHuBs1eyr9JO0ptg96PkUuU9spwopKi4Y0SpEs80pk/8RBKK
OeMPX1pxleKUcQBrBVubn9VMp0iLCJcI5lxGXEZcRmClWZS6JjVDBDYnYpmJMWX6laupCtmErQWxcEUHOiNXTzjC
B5nLwMo4o4o2SmQnkE85wQM/upzoi2OMdStXUhbcOHrLWoquMe9xGxwqNVbAbNrUVafoM0+fstANwxETEyUfT+MR
EmIKYtTI3ghCyX3XtzAYwsfeLPDH34HROZJ5F0BxBD/15cfmw0736EcPisRj3dbMvD5yG+3t/+lWf1a5pToZVn9D
PkNUhwNO04QZaZJiwQtHlqysccRJJZs2L2SR+QPbMODCqNx1SQo99ZhyrunZXXwjo100wJg1o+eHPcIb5Pj6h1CC
7rEPNaZOu8APuXiUr19CkH1V+zodVo/BQXQNTHPDVro8QXJYbSYs+idGzXMrudvaydsdopb88W0pkS7rnIDmERtB
tKDZ4tiJVy1uQIAI11t5MOeEYwoY6Fk/UvxfOs24J9SR5z7QSjtxKtK9eCWCWCWCWCWQDmmqm1mom6Gh3ypqqPya
h/l9JQjBcQcST6l80cDGn10Nk2z9rQqvIMUJfm6s6mD0ar3COkvBBsd7A2YQBweRc7fPymlbOy0DdFWYtsStqHf6
y3DHBtsPYkjmFFsgHrOnycScyXFJU1NPA/yk7Eo3Q3o7V3VWRL9ptIRiR9tEMwWVBd4D2oWjkxF+Y0iUCT2oPWGm
Q2Pudvc0o+Z1/veFbVLM5Io3rn/yI+vvltYtb4gWS5qifKwbRMzBYPkys+W/L3swmS7+mUrSZwrXEvf9T6JuYCEq
GfJhLqE11N/WEX3Y/53IGXFVXFwpP2TxkWOIbrgAnRDasy3TcTFPrd+b40aj2h7tpM7l40VMCSRUe7GkkDRaMcIb
2MYWwVrZLTakQnFIolDvT+MtfmL6LYOH4BskZ5Ro0wShVfqLidvxmxw+l0FsQHJjHpFJlaHMxURNBqMRwMkPLUf4
OmgVZIsamqWg++Lv0eEimcMY10qjfmC04nZJNCaascBxLjoi0b2aHyXZYELWcp5SobWBALp2Wssqpt0/a1P32DC7
qgG6TEPoRKE72LECeKEOaxOdMsjpJA4zobQ/cYLaoipH8jF2+su10LvaQcCCeQdcZd7PHh7cBzN9dTsgiR58w0Hl
Stc2OCbmBCROykLSkV/11Pq3k+BeNMyF/mYD6L28FKgaS1MyNGeNWIjlO8ACAc2ylgrl1BikEi7bgWBelf9kiFvq
VOLYbEwN4LHmCNGUf4nspptNo1gw6rGLp/G24SmsfMOAFX7rsgcDX+vWeLJY3fj7rpfb6BWYrMfU8zFHTJJ1IzjR
NqM5dP5zBwEYli7bUU0CpDK/lu7jgXc3HQn2Wt2ok2QHokIa50z7kmM50z1vzteJcLoFlhZYWUJ8bhuG41szMzQw
OhNG3eZZhWdxK5QeyiKCUYU1hX0jAsk20odyVdduEaiJ+y6y7V1gG2lsS1fq/jZSFbLcbU+h5zHhc6NsXsXsXsXs
Z2LJJJHA5tR0xyCwxLHKS3nrO4kwLjwolorvZXTCJVbIGmECTNQ6AoJukkN3YAXCa9xhmN0+dI8aSgsV8C3XNh92
0Tyc9rKOklYyUW3R5i7F4kqgj+nw8sPyJTYfVT+SSKWPDLrHBJ9cqPcxTnLh+o9zpQntAF2RI0xgodDenKwcXf6i
QlhG1o8ypipSmprt5A4Qa2puLlo9/i/4nz2gRShWJkaqSK7TFIdFHPtguyqeD93DEq/Q/w+BUDfBLt4T6lpdqTbh
PuDpJ7/YmiK4RwB3BO6tfdmn7yBeTjbpHrbu9zG8fL6QtC0IVfQSfiB60tt9b9U8vTmfFFae1GCTNnYcXFtqu/Sr
pbQNCga6T1i9S9Twz/7QSKDkK53ZSzck4d3Gq6MVdr6OZlBAURQeTXmK8YV4qBJ3+oA+CoTSWRgtE6VxNsErNcKF
SjVK+4Y5RGdGx2NWjmwXuJVXayBeDNAFszpwE/HFK3AElTXjL9+06ZtUdKpGfX88RZBquKUNFDjwSduwk0pbLnyU
1xPWHvS9L0vS9KqnpXOwThOE4ThQvpJRSUJo5uz8HehppL++1EC7kCzojCwCTOnnI5X9zcn2fHUfQu0cNa5cTeiz
SAaB3JnUTdApGyFjPeLCgf0TQ4QNCdWbNEtxLcS28IxYOM8XTan/TD5qd1Btl4MAue1zJ7P4P/rgXv7f+trlyjHY
gH3YtnBr+0/Yq4g/tRi7kcNsRBnZOhDS7vKMVDDRwndaTVzaCm5q4BkEg2U63/xgoeq/EoqCza5YgeReoj1DDBn+
EF5zntVELk7iKOJW1MDNjVrnN59aY4rnVnIc07Kb5EEb0hD1DRLqyLHIK2GU0MZcxY1JewP97abqdYkf9gwpNXLS
G6fcozC+OPChbl2Fbu1WyTpJodg7aBVR+Ywo2SZvFRID19DN5ISVDS7VqF6rrlKaOXLsjUPpOfca+CX/akHNmcvJ
CGiQVxBNRSEhISFv8hFVe41Y9pTnpxN2s8rltiKyUh4DAqMW8plIuLDChns7+ZSR0P7Emipx0pcSPpe5CtsuXJ4f
HBtX7u75ec/ivVdp512WRz9vQW07yQCQd5CeWK/FcCaLSTgQ69Kmx/8Zwfdo2j69s2nU/kuc2VNe7kN8c2R9NcYV
JFlR+2pvoe36riDzW55eyp5l2s0xT/ZtvoPRHZa2Wtlspy/ct9oO7NBD11Gt5JABON8Ab7LvDTrGKq3/nXQuzRzD
ivjJUHf7KQn7qZIcqhVDeo3vlDpkHmfQgDs6i/vWQ7cW5BxJeo/N0pZkHDFaw3zJ4MVIziYNxatAz+SncY1OJXJc
vWWt6uyxbOmcJ9QjIod6KUrPnVkNw1TCDewqzc0Ph39p2FTkNi0CIuHRQExJfSBdTsKnIbF8n86kO6sIzx+Oi1aB
n+xLJJOuj2E82tqXxsXAy29VzOvI86J/onYwvQbU+2qdYEYEehNehMmbm7sk5Gxl5/h6dM31be0Xb+BdSlBeOL2m
qcQTyYOKp5zvto72OqkmgEc7qYc+PePeQXds3yBggTxyTnODBb4jGrLPfsWz/yECgmhoDwWgKgaju+ZSwROa6pJk
7enAnEG1WgPApMazYhBDkYio+wQJN0CHa5KNVz2TENmRXXDIw8Xcvr3zmq8qjeMfrhtiVG2YIbUgm84+UqSpI8QY
FO1Y2Q2+LiabqWHBXYNO4yqEoTOTZUemkIe6RjEdTolxg3wme/3WoDfsZYXIzZaAxYMWDFgwtmUKnMfNz6Et2GH0
8HSexUERoaTyCVNvKxCwH7D5GvwcyaX0TwXTWm7zTjUavrNO+gCyN9CjWKwBucwqjwSiiwjuxTrj9tPu0iducNyp
UlxTtHyJdQOY6dm3SJj24JaosRwzFkxJK55BiD9CMLORNF5L4dFU9Y5ph53iZWhDXBg0fa+CoGZPIs+WI1h7ZY38
NQmxR+lr+zD3aAM7GPOB/rJqdG0dWLs60zTEX6BgkNC8vHQKF4UBMyQ7j+J/aGXE2ch1CJqVGuZbu3rgPF+YBGa/
lwYDTZrgVisNZHd3FL/zR+TT97f8tRkXhQDngVF3R2OcpOrE51MHUiEfSZsNrbP+uVhjsMJ3W0UCV8Mku9pKP4jA
W8m8whnutww3gWGdu+C39INOkPm4jgr5/OWdfpcNKKx37v1EQxQhWZan7otd+I/sCql6MheYC2ELJdcR6eCo2WPl
GX8SYG0p07wsqd/gN132qjLPxp7GFcnU4zgoDvQWRQFzSshQUtAqtFaW/c5ANmqLLSvOdqlB6OW0BmTPDNb5JiM4
m/QTMeSFGmD6VAD2CtV3yS1bx+tM7a5sDlFcBL/XGr1pdyQfOerRuO83K7OnnDhOXfONJIqYah8JY/XMmUEIVWPO
NBZrCMae0EQqQVkkkU4VYtzpFGSicPNhNDHcoKeo+jU+TnpXwG/rQnMeydbCDg8+brg2UVyHsRfUC8sV0E0CQOHx
sLAS8+whw4G3gu2JQHjmRB4m21urKA7sqwvyj0uvsTSfJXEfdK9lZTqJTsd6tng5UNqMIf9X+3QXUWKTfVz5WVMW
tE8J2TK+U7lwMCA/e5s7kiFXBIATvO8O2fUNBoML8Boy/EHNd74LVZcTgSSltHpPbH7h8DPB1SEF1T+tT8OjYm7u
Yf7ggrwDaZ6MnMiRJFEbwpHE1QoYxY25+mlGU0wGJNqX/cNWNjEZKmYju8VJEvUYNhynCeEuKW3C54ytyYdsZ/fz
WPOCn3+ku5Pcu0Ml45+lV2E6WCAItbJ3IvznSrJo2hxpLJOYX53aZf+GAJgomNgvF0KwKo6VoZ+L2lBHF0UmpzkH
RrOEAHbl0hoTbF4BrBOGmHxp3K1pzHTe3G2+GNoRK34UHpsGVVred7UFfOFBZ2bH3Iz7NMzT+c7PL7BuADLnPl80
sKGRZR8qEzfCMfb0//SDKv7l56Lc4a1TqBG6U7X+IJoOxJn4ehYSA7PKl3joeAMWI5yhfZ6Ao7RQv3Ri6xLnBzoz
/CHU/Zz+BrZXHnC3348fDANFsRdUV3/UceAaHqSIWsxq3fXrLjdgaYDufx9nZ5R7m2bKSLW361JO/lOQAj53GqwB
6PqU3VUoAvx60sybAq3iF04YWLemiUWEpWh058C9RCKO2TfylPBU1dol4hE6e7e/MhEwv9Qlx7vO9HJ0c8qnmU1E
hN92iMGbnrphMBe9OkXus8Uot21U5OazSGyWRZPRS7zJ3YS8ZV+YZ/gNXL5Ow8bjDmeSJJh0ssR7tGT47CoTnW7x
+HvMj6OrZakKz62rj9BMvU3cLIY64UZIsrc4y6Yml5pacl+Cs9d/UTTw+T0magM83oyegQaDveocI1yh5UxPKupE
j+An+yCnCjAua1wcWPGgNOV7iKR7t8t8t7Gedl8b/BZcmKR0b3tkkVtzi/IB693igoHYSH1o792Sa+FaCJSLzMIP
ldPXAhf7/Wi0DrLYiobNsQzdS8rdjEP+uBv6FnSKDTbdrEApC9prkP77xMBvGmgC9rRQLCJxDpjjCGq1VdBRqnsX
2fC1gSuy6R/LBfsPx3QK84xc1QVYhpS/ol6LGlDkNwUGSPO2M2IdwLcC3AtvfQ/eKZaDbK2AnCjT+bcpkg2evmf4
Rw8ccuApL1yhr1OxE8KgiGQGMjtHTcm8UWMjFWnyEj+iw6eNlBDnPnF0ny/smlk9E495aGINEIsmaF+082fE5LD4
5pK1qwRfhCMhyR64MXsGAAABoRIAMpwDMAOAgP34OlIAkkkkKCBKANrTBn6g/gUOLB/tgBQg0cTXYITGZTvriMv3
RcL3x3J1seu6cjk6Zn8SI/8oeEGU+CgqVVEoEw0NcfEdzbqwuSoQnpqGbbcpKGBDiiAyMXuxt8UlpIUpqM8QtoiL
83tdt/TUa8tFQB2rckQaIuouEm4tPkBWXzDxYttvS6F8kBoW5juEmm4aOIlm7m8TwYKGJ1dVuFgB7wBCBx9TCWRY
5UBghUuTq88QbTy0KLhVKSL9jiH/sdQoB9w6NqQo4AGcdyBhu/wy0bJrdVIsrBb4XAz5GDkDoftKng5rOGGagvkl
XxgnoPX63It9Tu0z5vUbUJaVhYFPo/+1MRSTzIVHhCtGUC42KpympSx+qGc+y5cDI49xER0MHqb4rhHEGBx7wtxS
3sX+CiNP7i+3J2wYvf/pKxDDKFVSHwYNGvENV7g7pnzrWdPlZNK8AAxdcnAzCzXcFyZalpM/tKi3w2A+aAAh12n4
3umx7EWG2pL8ARhjQDPPNdmAjsmI2WSFSkGY2Z6rpYPsatDvMyf/ygAAAeISADLdAzAEAQV9+DpSAJJJJCggSgDb
vJDz/ktLFaltU2+bpq9SkDhZhbC1KCJkgXTmT4HuxJzK7t69qaKDnhaK6XvuAPDI42rDDjOlLgTQzL9jI5uKj0K1
0inJkSOzK8ieLEa6cWsa1HMYedcSEepBFegU0iAn4MFgVRgcGon1lckroM2lQqdPBBOI2hyLtMqhu9dxP6uCb5hd
c6597F8WJt6yKKKjLuFujgNeIWLGaUljCOfnN4BqN4Z7i+FO/TP+2UH23jc1yZtVAQlnhS36s2kciAOBvbp0ZX+A
pXg6guHOtGrdUFgpTzKFmaPmCqUzRyV5CjqCRja1/uS4qnzB2dlXUibQZVKPCIelslu4pN5hoAx8BP/DKSNTLIrP
LczHfSydqGKExFoya3ZgcfzyTfWYXD8eAS6VAC6iJ4pso6XF09BILDBqF7B95cwd07QIdVEoGY0tqG7YH74AcbZd
AAU/qwN6wtmPXLGiMHAGQ82FrCKuYq7DMCv8na+P2LeU8I8zDc6EXUL+PJM8RqE1deWjriLWPpB0pWyXEKP+7gGo
26NWsSrVkDod4iyW5kwdNa33MwcLDqbqLeLsC8e65iBVoTOrwP2kb4dbmtPQGzelmgNlff3TdKBs+SLAKinowQ==
"""
)


def _length_prefixed(blob: bytes) -> tuple[bytes, ...]:
    parts = []
    offset = 0
    while offset < len(blob):
        size = int.from_bytes(blob[offset : offset + 4], "big")
        parts.append(blob[offset + 4 : offset + 4 + size])
        offset += 4 + size
    return tuple(parts)


# Temporal units 0 (TD, SH, key OBU_FRAME), 1 and 2 (TD, inter OBU_FRAME) of small.ivf.
SMALL_TUS = _length_prefixed(_SMALL)
TD = bytes.fromhex("1200")  # temporal delimiter with obu_size 0, as libaom writes it
SMALL_SH_OBU = bytes.fromhex("0a0a00000003b4ff736be401")
SMALL_SH = SMALL_SH_OBU[2:]


def _view(data: bytes) -> memoryview:
    return memoryview(data)


def _views(payloads: Sequence[bytes]) -> list[memoryview]:
    return [memoryview(p) for p in payloads]


def _depacketizer() -> Av1Depacketizer:
    return Av1Depacketizer(CLOCK_RATE)


def _without_td(temporal_unit: bytes) -> bytes:
    assert temporal_unit.startswith(TD)
    return temporal_unit[len(TD) :]


def _obu(kind: int, payload: bytes, extension: int | None = None, size: bool = False) -> bytes:
    """An OBU (AV1 spec 5.3.1), with or without obu_size."""
    header = bytes([kind << 3 | (0x04 if extension is not None else 0) | (0x02 if size else 0)])
    if extension is not None:
        header += bytes([extension])
    return header + (encode_leb128(len(payload)) if size else b"") + payload


def _pack(fields: Sequence[tuple[int, int]], trailing: bool = True) -> bytes:
    """Bit fields (value, width) MSB first; then trailing_bits() (AV1 spec 5.3.4)."""
    bits = "".join(format(value, f"0{width}b") if width else "" for value, width in fields)
    assert all(len(format(v, "b")) <= w for v, w in fields if w), fields
    if trailing:
        bits += "1"
    bits += "0" * (-len(bits) % 8)
    return int(bits, 2).to_bytes(len(bits) // 8, "big") if bits else b""


# -- leb128 (AV1 spec 4.10.5) --------------------------------------------------------------------

LEB128 = [
    pytest.param("00", 0, id="0"),
    pytest.param("7f", 127, id="127"),
    pytest.param("8001", 128, id="128"),
    pytest.param("ff7f", 16383, id="16383"),
    pytest.param("808001", 16384, id="16384"),
    pytest.param("ffffffff0f", 2**32 - 1, id="2^32-1"),
    pytest.param("8000", 0, id="padded-zero"),
    pytest.param("ff808080808080 00".replace(" ", ""), 127, id="8-byte-padded"),
]


@pytest.mark.parametrize(("encoded", "value"), LEB128)
def test_read_leb128(encoded: str, value: int) -> None:
    data = bytes.fromhex(encoded) + b"\xaa"
    assert read_leb128(data, 0, len(data), "x") == (value, len(data) - 1)


@pytest.mark.parametrize("value", [0, 1, 127, 128, 300, 16383, 16384, 2**21, 2**32 - 1])
def test_encode_leb128_round_trip(value: int) -> None:
    encoded = encode_leb128(value)
    assert read_leb128(encoded, 0, len(encoded), "x") == (value, len(encoded))
    assert encoded[-1] & 0x80 == 0 and all(b & 0x80 for b in encoded[:-1])


MALFORMED_LEB128 = [
    pytest.param("", "x leb128 is truncated", id="empty"),
    pytest.param("80", "x leb128 is truncated", id="continuation-then-end"),
    pytest.param("ffffffffffffffff", "x leb128 is longer than 8 bytes", id="9-bytes"),
    pytest.param("8080808010", "x leb128 value 4294967296 exceeds 2^32 - 1", id="2^32"),
]


@pytest.mark.parametrize(("encoded", "message"), MALFORMED_LEB128)
def test_malformed_leb128(encoded: str, message: str) -> None:
    data = bytes.fromhex(encoded)
    with pytest.raises(DepacketizeError) as raised:
        read_leb128(data, 0, len(data), "x")
    assert str(raised.value) == message


# -- RTP spec 4.4/4.5: aggregation header and OBU elements (invented) --------------------------

ELEMENTS = [
    pytest.param("00 01aa", ["aa"], id="W0-one"),
    pytest.param("00 01aa 02bbcc", ["aa", "bbcc"], id="W0-two"),
    pytest.param("00 01aa 01bb 01cc 01dd", ["aa", "bb", "cc", "dd"], id="W0-four"),
    pytest.param("10 aabbcc", ["aabbcc"], id="W1"),
    pytest.param("20 01aa bbcc", ["aa", "bbcc"], id="W2"),
    pytest.param("30 01aa 02bbcc dd", ["aa", "bbcc", "dd"], id="W3"),
    pytest.param("07 01aa", ["aa"], id="reserved-bits-ignored"),
    pytest.param("08 01aa", ["aa"], id="N"),
    pytest.param("c0 01aa", ["aa"], id="Z-and-Y"),
    pytest.param("00 00 01aa", ["", "aa"], id="W0-zero-length-element"),
    pytest.param("20 00 aa", ["", "aa"], id="W2-zero-length-first"),
    pytest.param("20 01aa", ["aa", ""], id="W2-zero-length-last"),
    pytest.param("30 01aa 01bb", ["aa", "bb", ""], id="W3-zero-length-last"),
    pytest.param("00 8001" + "ab" * 128, ["ab" * 128], id="two-byte-length"),
    pytest.param("00 807f" + "ab" * 0x3F80, ["ab" * 0x3F80], id="non-minimal-length"),
]


@pytest.mark.parametrize(("payload", "elements"), ELEMENTS)
def test_packet_elements(payload: str, elements: list[str]) -> None:
    data = bytes.fromhex(payload.replace(" ", ""))
    header, parsed = packet_elements(data)
    assert header == data[0]
    assert [bytes(e).hex() for e in parsed] == elements


MALFORMED_ELEMENTS = [
    pytest.param("", "AV1 payload is empty", id="empty"),
    pytest.param("00", "AV1 payload has no OBU elements after its aggregation header", id="W0"),
    pytest.param("10", "AV1 payload has no OBU elements after its aggregation header", id="W1"),
    pytest.param("88 01aa", "AV1 aggregation header has both N and Z set", id="N-and-Z"),
    pytest.param(
        "00 03aabb",
        "AV1 OBU element of 3 bytes overruns the payload (2 bytes left)",
        id="W0-overrun",
    ),
    pytest.param(
        "00 01aa 05bb",
        "AV1 OBU element of 5 bytes overruns the payload (1 bytes left)",
        id="W0-second-overruns",
    ),
    pytest.param("00 80", "AV1 OBU element length leb128 is truncated", id="length-cut"),
    pytest.param(
        "00 ffffffffffffffffff",
        "AV1 OBU element length leb128 is longer than 8 bytes",
        id="length-9-bytes",
    ),
    pytest.param(
        "30 02aabb",
        "AV1 aggregation header says W=3 but the payload holds only 1 length-prefixed elements",
        id="W3-one-element",
    ),
    pytest.param(
        "30 01aa 09bb",
        "AV1 OBU element of 9 bytes overruns the payload (1 bytes left)",
        id="W3-second-overruns",
    ),
]


@pytest.mark.parametrize(("payload", "message"), MALFORMED_ELEMENTS)
def test_malformed_elements(payload: str, message: str) -> None:
    with pytest.raises(DepacketizeError) as raised:
        packet_elements(bytes.fromhex(payload.replace(" ", "")))
    assert str(raised.value) == message


@pytest.mark.parametrize(
    ("header", "starts"),
    [
        pytest.param(0x00, True, id="Z0"),
        pytest.param(0x10, True, id="Z0-W1"),
        pytest.param(0x18, True, id="N"),
        pytest.param(0x40, True, id="Y-only"),
        pytest.param(0x07, True, id="reserved"),
        pytest.param(0x80, False, id="Z"),
        pytest.param(0xC0, False, id="Z-and-Y"),
        pytest.param(0xB0, False, id="Z-W3"),
    ],
)
def test_starts_frame(header: int, starts: bool) -> None:
    assert _depacketizer().starts_frame(_view(bytes([header, 0x01, 0x30]))) is starts


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        pytest.param(b"", "AV1 payload is empty", id="empty"),
        pytest.param(b"\x00", "AV1 payload has no OBU elements", id="header-only"),
        pytest.param(b"\x88\x01\x30", "AV1 aggregation header has both N and Z set", id="N-Z"),
    ],
)
def test_starts_frame_malformed(payload: bytes, message: str) -> None:
    with pytest.raises(DepacketizeError) as raised:
        _depacketizer().starts_frame(_view(payload))
    assert str(raised.value) == message


# -- AV1 spec 5.3: OBU headers inside elements (invented) ---------------------------------------

OBUS = [
    # (element, [(type, extension, payload)])
    pytest.param("30 aabb", [(6, None, "aabb")], id="frame-no-size"),
    pytest.param("32 02 aabb", [(6, None, "aabb")], id="frame-size-matches"),
    pytest.param("36 28 02 aabb", [(6, 0x28, "aabb")], id="extension-with-size"),
    pytest.param("34 48 aabb", [(6, 0x48, "aabb")], id="extension-no-size"),
    pytest.param(
        "12 00 0a 01 cc 32 01 dd",
        [(2, None, ""), (1, None, "cc"), (6, None, "dd")],
        id="low-overhead-sequence",
    ),
    pytest.param("32 01 aa 28 bbcc", [(6, None, "aa"), (5, None, "bbcc")], id="sized-then-rest"),
    pytest.param("10", [(2, None, "")], id="empty-td"),
    pytest.param("31 aa", [(6, None, "aa")], id="reserved-bit-kept"),
    pytest.param("32 8100" + "ab", [(6, None, "ab")], id="non-minimal-obu-size"),
]


@pytest.mark.parametrize(("element", "expected"), OBUS)
def test_split_obus(element: str, expected: list[tuple[int, int | None, str]]) -> None:
    obus = split_obus(bytes.fromhex(element.replace(" ", "")))
    assert [(o.type, o.extension, bytes(o.payload).hex()) for o in obus] == expected


def test_obu_layer_ids() -> None:
    # extension: temporal_id (3) | spatial_id (2) | reserved (3)
    (obu,) = split_obus(bytes([0x34, 0b101_10_000, 0xAA]))
    assert (obu.temporal_id, obu.spatial_id) == (5, 2)
    (plain,) = split_obus(b"\x30\xaa")
    assert (plain.temporal_id, plain.spatial_id) == (0, 0)


@pytest.mark.parametrize(
    ("element", "written"),
    [
        pytest.param("30 aabb", "32 02 aabb", id="size-added"),
        pytest.param("32 02 aabb", "32 02 aabb", id="size-kept"),
        pytest.param("32 8200 aabb", "32 02 aabb", id="size-rewritten-minimal"),
        pytest.param("34 48 aabb", "36 48 02 aabb", id="extension-kept"),
        pytest.param("31 aa", "33 01 aa", id="reserved-bit-kept"),
        pytest.param("18", "1a 00", id="empty"),
        pytest.param("30" + "ab" * 200, "32 c801" + "ab" * 200, id="two-byte-size"),
    ],
)
def test_obu_written_with_size(element: str, written: str) -> None:
    (obu,) = split_obus(bytes.fromhex(element.replace(" ", "")))
    assert obu.to_bytes().hex() == written.replace(" ", "")


MALFORMED_OBUS = [
    pytest.param("b0 aa", "AV1 OBU header 0xb0 has the forbidden bit set", id="forbidden"),
    pytest.param("32 01 aa b0", "AV1 OBU header 0xb0 has the forbidden bit set", id="second"),
    pytest.param("34", "AV1 OBU extension header is missing", id="extension-missing"),
    pytest.param("32", "AV1 obu_size leb128 is truncated", id="size-missing"),
    pytest.param("32 80", "AV1 obu_size leb128 is truncated", id="size-cut"),
    pytest.param(
        "32 05 aabb", "AV1 obu_size 5 overruns its element (2 bytes left)", id="size-too-big"
    ),
    pytest.param(
        "36 28 03 aabb", "AV1 obu_size 3 overruns its element (2 bytes left)", id="ext-too-big"
    ),
    pytest.param(
        "32 01 aa 32 02 bb", "AV1 obu_size 2 overruns its element (1 bytes left)", id="second-big"
    ),
]


@pytest.mark.parametrize(("element", "message"), MALFORMED_OBUS)
def test_malformed_obus(element: str, message: str) -> None:
    with pytest.raises(DepacketizeError) as raised:
        split_obus(bytes.fromhex(element.replace(" ", "")))
    assert str(raised.value) == message


# -- AV1 spec 5.5: sequence headers from real encoders ------------------------------------------


def _fields(sequence: SequenceHeader) -> dict[str, Any]:
    return {
        "profile": sequence.seq_profile,
        "level": sequence.seq_level_idx_0,
        "tier": sequence.seq_tier_0,
        "size": (sequence.max_frame_width, sequence.max_frame_height),
        "bit_depth": sequence.bit_depth,
        "mono": sequence.mono_chrome,
        "subsampling": (sequence.subsampling_x, sequence.subsampling_y),
        "csp": sequence.chroma_sample_position,
        "full_range": sequence.color_range,
        "colour": (
            sequence.color_primaries,
            sequence.transfer_characteristics,
            sequence.matrix_coefficients,
        ),
        "frame_ids": sequence.frame_id_length,
        "still": (sequence.still_picture, sequence.reduced_still_picture_header),
        "decoder_model": sequence.decoder_model_info_present_flag,
    }


_PLAIN = {
    "profile": 0,
    "level": 0,
    "tier": 0,
    "size": (160, 120),
    "bit_depth": 8,
    "mono": False,
    "subsampling": (1, 1),
    "csp": 0,
    "full_range": False,
    "colour": (2, 2, 2),
    "frame_ids": 0,
    "still": (False, False),
    "decoder_model": False,
}

# name -> (sequence header OBU, fields that differ from _PLAIN, av1C bytes 1-3 derived by hand)
REAL_SEQUENCE_HEADERS: dict[str, tuple[str, dict[str, Any], str]] = {
    # av1C byte 1: seq_profile(3) seq_level_idx_0(5); byte 2: seq_tier_0, high_bitdepth,
    # twelve_bit, monochrome, chroma_subsampling_x, chroma_subsampling_y,
    # chroma_sample_position(2); byte 3: reserved(3) initial_presentation_delay_present(1) 0000.
    "libaom": ("0a0a00000003b4ff736be401", {}, "00 0c 00"),  # 000_00000, 0000_1100
    "libaom-10bit": ("0a0a00000003b4ff736be501", {"bit_depth": 10}, "00 4c 00"),  # 0100_1100
    "libsvtav1": ("0a0a00000003b4ff73efe401", {}, "00 0c 00"),
    "libsvtav1-10bit": ("0a0a00000003b4ff73efe501", {"bit_depth": 10}, "00 4c 00"),
    # profile 1 (High): 4:4:4, mono_chrome not coded: 001_00000, 0000_0000
    "libaom-444": ("0a0a20000003b4ff736be408", {"profile": 1, "subsampling": (0, 0)}, "20 00 00"),
    # profile 2 (Professional) 10-bit 4:2:2: 010_00000, 0100_1000
    "libaom-422-10bit": (
        "0a0a40000003b4ff736be502",
        {"profile": 2, "bit_depth": 10, "subsampling": (1, 0)},
        "40 48 00",
    ),
    # monochrome: 0001_1100
    # FFmpeg's gray is full range.
    "libaom-gray": ("0a0a00000003b4ff736be4a8", {"mono": True, "full_range": True}, "00 1c 00"),
    "libaom-full-range-bt709": (
        "0a0d00000003b4ff736be440404061",
        {"full_range": True, "colour": (1, 1, 1)},
        "00 0c 00",
    ),
    "libaom-error-resilient": ("0a0b00000003b4ff7e06d7c802", {"frame_ids": 15}, "00 0c 00"),
    "libaom-timing-model": (
        "0a1d040000000400000079780000000a530000035f915f90bbb4ff736be401",
        {"decoder_model": True},
        "00 0c 00",
    ),
    "libaom-still-picture": ("0a06181da7fbb401", {"still": (True, True)}, "00 0c 00"),
    "libaom-320x240": ("0a0b000000043cffbcdaf90040", {"size": (320, 240)}, "00 0c 00"),
}


@pytest.mark.parametrize("name", REAL_SEQUENCE_HEADERS)
def test_real_sequence_header(name: str) -> None:
    obu_hex, differences, _ = REAL_SEQUENCE_HEADERS[name]
    (obu,) = split_obus(bytes.fromhex(obu_hex))
    assert obu.type == 1
    assert _fields(parse_sequence_header(obu.payload)) == {**_PLAIN, **differences}


@pytest.mark.parametrize("name", REAL_SEQUENCE_HEADERS)
def test_av1c_from_real_sequence_header(name: str) -> None:
    # AV1-ISOBMFF 2.3.3: 0x81 (marker, version 1), three bytes of fields, configOBUs = the
    # sequence header OBU with obu_size. (FFmpeg's MP4 muxer writes the same bytes.)
    obu_hex, _, fields = REAL_SEQUENCE_HEADERS[name]
    obu = bytes.fromhex(obu_hex)
    (parsed,) = split_obus(obu)
    record = av1c_record(parse_sequence_header(parsed.payload), parsed.to_bytes())
    assert record == bytes.fromhex("81" + fields.replace(" ", "")) + obu


def test_timing_model_details() -> None:
    # From FFmpeg's trace: buffer_delay_length_minus_1 15, buffer_removal_time_length_minus_1 9,
    # frame_presentation_time_length_minus_1 9, equal_picture_interval 0, one operating point
    # with a decoder model and initial_display_delay_minus_1 7.
    (obu,) = split_obus(bytes.fromhex(REAL_SEQUENCE_HEADERS["libaom-timing-model"][0]))
    sequence = parse_sequence_header(obu.payload)
    assert sequence.timing_info_present_flag
    assert not sequence.equal_picture_interval
    assert (sequence.buffer_removal_time_length, sequence.frame_presentation_time_length) == (
        10,
        10,
    )
    (point,) = sequence.operating_points
    assert (point.idc, point.decoder_model_present, point.initial_display_delay_minus_1) == (
        0,
        True,
        7,
    )


def test_libaom_tool_flags() -> None:
    sequence = parse_sequence_header(SMALL_SH)
    assert sequence.enable_order_hint and sequence.order_hint_bits == 7
    assert sequence.seq_force_screen_content_tools == 2
    assert sequence.seq_force_integer_mv == 2
    assert not sequence.use_128x128_superblock and not sequence.enable_superres
    assert not sequence.film_grain_params_present and not sequence.separate_uv_delta_q
    assert (sequence.frame_width_bits, sequence.frame_height_bits) == (8, 7)


# -- AV1 spec 5.5: invented sequence headers ------------------------------------------------------


def _tools(reduced: bool = False) -> list[tuple[int, int]]:
    """frame_id_numbers_present_flag (0) to enable_restoration as libaom realtime sets them."""
    if reduced:
        return [(0, 1), (1, 1), (1, 1), (0, 1), (1, 1), (0, 1)]
    return [
        (0, 1),  # frame_id_numbers_present_flag
        (0, 1), (1, 1), (1, 1),  # use_128x128_superblock, filter_intra, intra_edge_filter
        (0, 1), (1, 1), (1, 1), (0, 1),  # interintra, masked, warped_motion, dual_filter
        (1, 1), (0, 1), (1, 1),  # enable_order_hint, jnt_comp, ref_frame_mvs
        (1, 1), (1, 1), (6, 3),  # choose screen content tools, choose integer mv, order bits
        (0, 1), (1, 1), (0, 1),  # enable_superres, enable_cdef, enable_restoration
    ]  # fmt: skip


def _plain_sequence(
    profile: int = 0, level: int = 0, colour: Sequence[tuple[int, int]] = ((0, 1),) * 5
) -> list[tuple[int, int]]:
    """A sequence header like libaom's 160x120 one, with its color_config() replaced."""
    head = [(profile, 3), (0, 1), (0, 1), (0, 1), (0, 1), (0, 5), (0, 12), (level, 5)]
    if level > 7:
        head.append((0, 1))
    size = [(7, 4), (6, 4), (159, 8), (119, 7)]
    return head + size + _tools() + list(colour) + [(0, 1)]  # film_grain_params_present


def test_invented_writer_reproduces_libaom() -> None:
    # high_bitdepth, mono_chrome, color_description_present_flag, color_range,
    # chroma_sample_position (2 bits) and separate_uv_delta_q of libaom's 8-bit 4:2:0 header.
    colour = [(0, 1), (0, 1), (0, 1), (0, 1), (0, 2), (0, 1)]
    assert _pack(_plain_sequence(colour=colour)) == SMALL_SH


COLOUR_CONFIGS = [
    # (profile, color_config fields, bit_depth, twelve_bit, (ssx, ssy), csp, full_range, mono)
    pytest.param(
        0, [(0, 1), (0, 1), (0, 1), (1, 1), (2, 2), (1, 1)], 8, False, (1, 1), 2, True, False,
        id="p0-420-colocated-full-range",
    ),
    pytest.param(
        0, [(0, 1), (0, 1), (0, 1), (0, 1), (1, 2), (0, 1)], 8, False, (1, 1), 1, False, False,
        id="p0-420-vertical",
    ),
    pytest.param(
        0, [(1, 1), (1, 1), (0, 1), (1, 1)], 10, False, (1, 1), 0, True, True,
        id="p0-10bit-mono-full-range",
    ),
    pytest.param(
        1, [(1, 1), (0, 1), (0, 1), (0, 1)], 10, False, (0, 0), 0, False, False,
        id="p1-10bit-444",
    ),
    pytest.param(
        2, [(1, 1), (1, 1), (0, 1), (0, 1), (0, 1), (1, 1), (0, 1), (0, 1)], 12, True, (1, 0),
        0, False, False, id="p2-12bit-422",
    ),
    pytest.param(
        2, [(1, 1), (1, 1), (0, 1), (0, 1), (0, 1), (0, 1), (0, 1)], 12, True, (0, 0),
        0, False, False, id="p2-12bit-444-no-ssy",
    ),
    pytest.param(
        2, [(1, 1), (1, 1), (0, 1), (0, 1), (0, 1), (1, 1), (1, 1), (2, 2), (0, 1)], 12, True,
        (1, 1), 2, False, False, id="p2-12bit-420-csp",
    ),
    pytest.param(
        2, [(1, 1), (0, 1), (0, 1), (0, 1), (0, 1), (0, 1)], 10, False, (1, 0), 0, False, False,
        id="p2-10bit-is-422",
    ),
    pytest.param(
        2, [(0, 1), (0, 1), (0, 1), (0, 1), (0, 1)], 8, False, (1, 0), 0, False, False,
        id="p2-8bit-is-422",
    ),
    # sRGB (BT.709 primaries, sRGB transfer, identity matrix): 4:4:4, full range, no
    # color_range bit; separate_uv_delta_q still coded.
    pytest.param(
        1, [(0, 1), (1, 1), (1, 8), (13, 8), (0, 8), (1, 1)], 8, False, (0, 0), 0, True, False,
        id="p1-srgb",
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    ("profile", "colour", "depth", "twelve", "subsampling", "csp", "full", "mono"), COLOUR_CONFIGS
)
def test_invented_color_config(
    profile: int,
    colour: list[tuple[int, int]],
    depth: int,
    twelve: bool,
    subsampling: tuple[int, int],
    csp: int,
    full: bool,
    mono: bool,
) -> None:
    sequence = parse_sequence_header(_pack(_plain_sequence(profile, colour=colour)))
    assert sequence.seq_profile == profile
    assert sequence.bit_depth == depth
    assert sequence.twelve_bit is twelve
    assert sequence.high_bitdepth is (depth > 8)
    assert (sequence.subsampling_x, sequence.subsampling_y) == subsampling
    assert sequence.chroma_sample_position == csp
    assert sequence.color_range is full
    assert sequence.mono_chrome is mono


@pytest.mark.parametrize(
    ("subsampling", "csp", "code"),
    [
        pytest.param((1, 1), 0, 0, id="420-unknown"),
        pytest.param((1, 1), 1, 0, id="420-vertical"),
        pytest.param((1, 1), 2, 1, id="420-colocated"),
        pytest.param((1, 0), 0, 2, id="422"),
        pytest.param((0, 0), 0, 3, id="444"),
    ],
)
def test_chroma_subsampling_code(subsampling: tuple[int, int], csp: int, code: int) -> None:
    sequence = parse_sequence_header(SMALL_SH)
    sequence.subsampling_x, sequence.subsampling_y = subsampling
    sequence.chroma_sample_position = csp
    assert sequence.chroma_subsampling == code


# Every optional part: timing info with equal_picture_interval, a decoder model, initial display
# delays, two operating points (the first with a tier), frame ids, 1280x720 in 11-bit fields,
# forced screen content tools, superres, colour description, film grain.
RICH_SEQUENCE = [
    (0, 3), (0, 1), (0, 1),  # seq_profile, still_picture, reduced_still_picture_header
    (1, 1), (1, 32), (30, 32), (1, 1), (0b00100, 5),  # timing_info: uvlc() = 3
    (1, 1), (9, 5), (1, 32), (4, 5), (3, 5),  # decoder_model_info: 10, 5, 4 bits
    (1, 1), (1, 5),  # initial_display_delay_present_flag, operating_points_cnt_minus_1
    (0x103, 12), (9, 5), (1, 1),  # op 0: idc, seq_level_idx 9 (5.1), seq_tier 1
    (1, 1), (100, 10), (200, 10), (1, 1), (1, 1), (9, 4),  # op 0: model, delay
    (0x101, 12), (4, 5), (0, 1), (0, 1),  # op 1: level 4, no model, no display delay
    (10, 4), (10, 4), (1279, 11), (719, 11),  # frame size fields
    (1, 1), (5, 4), (2, 3),  # frame_id_numbers_present_flag: idLen = 2 + 5 + 3 = 10
    (1, 1), (0, 1), (0, 1), (0, 1), (0, 1), (0, 1), (0, 1),  # 128x128 … dual_filter
    (1, 1), (0, 1), (0, 1),  # enable_order_hint, jnt_comp, ref_frame_mvs
    (0, 1), (1, 1),  # seq_choose_screen_content_tools 0, seq_force_screen_content_tools 1
    (0, 1), (0, 1),  # seq_choose_integer_mv 0, seq_force_integer_mv 0
    (4, 3),  # order_hint_bits_minus_1
    (1, 1), (0, 1), (0, 1),  # enable_superres, cdef, restoration
    (0, 1), (0, 1), (1, 1), (9, 8), (16, 8), (9, 8),  # 8-bit, BT.2020 PQ colour description
    (1, 1), (2, 2), (1, 1),  # color_range, chroma_sample_position colocated, separate_uv
    (1, 1),  # film_grain_params_present
]  # fmt: skip


def test_invented_rich_sequence_header() -> None:
    sequence = parse_sequence_header(_pack(RICH_SEQUENCE))
    assert sequence.timing_info_present_flag and sequence.equal_picture_interval
    assert sequence.decoder_model_info_present_flag
    assert (sequence.buffer_removal_time_length, sequence.frame_presentation_time_length) == (5, 4)
    assert [
        (
            p.idc,
            p.seq_level_idx,
            p.seq_tier,
            p.decoder_model_present,
            p.initial_display_delay_minus_1,
        )
        for p in sequence.operating_points
    ] == [(0x103, 9, 1, True, 9), (0x101, 4, 0, False, None)]
    assert (sequence.max_frame_width, sequence.max_frame_height) == (1280, 720)
    assert sequence.frame_id_length == 10
    assert sequence.use_128x128_superblock
    assert (sequence.seq_force_screen_content_tools, sequence.seq_force_integer_mv) == (1, 0)
    assert sequence.order_hint_bits == 5
    assert sequence.enable_superres
    assert (sequence.color_primaries, sequence.transfer_characteristics) == (9, 16)
    assert sequence.color_range and sequence.chroma_sample_position == 2
    assert sequence.separate_uv_delta_q and sequence.film_grain_params_present
    # av1C: profile 0 level 9 -> 0x09; tier 1, 8-bit, 4:2:0 colocated -> 1000_1110.
    record = av1c_record(sequence, b"\x0a\x00")
    assert record == bytes([0x81, 0x09, 0x8E, 0x00, 0x0A, 0x00])


def test_uvlc() -> None:
    # AV1 spec 4.10.3: leading zeros, a one, then as many value bits.
    assert _uvlc(BitReader(bytes([0b1000_0000]), "x")) == 0
    assert _uvlc(BitReader(bytes([0b0010_1000]), "x")) == 4
    # 32 leading zeros: 2^32 - 1, and no value bits follow.
    reader = BitReader(bytes(4) + bytes([0b1000_0000]), "x")
    assert _uvlc(reader) == 2**32 - 1
    assert reader.position == 33


def test_uvlc_at_its_limit_in_a_sequence_header() -> None:
    fields = list(RICH_SEQUENCE)
    fields[7] = (1, 33)  # num_ticks_per_picture_minus_1 = 2^32 - 1: 32 zeros and a one
    assert parse_sequence_header(_pack(fields)).operating_points[0].seq_level_idx == 9


MALFORMED_SEQUENCES = [
    pytest.param(
        _pack([(3, 3), *_plain_sequence()[1:]]),
        "AV1 sequence header has reserved seq_profile 3",
        id="profile-3",
    ),
    pytest.param(
        _pack([(7, 3), *_plain_sequence()[1:]]),
        "AV1 sequence header has reserved seq_profile 7",
        id="profile-7",
    ),
    pytest.param(
        _pack(_plain_sequence(colour=[(0, 1)] * 6), trailing=False),
        "AV1 sequence header has no trailing one bit",
        id="no-trailing-bit",
    ),
    pytest.param(
        SMALL_SH[:-1],
        "AV1 sequence header truncated at bit 72 (needs 1 more)",
        id="cut-before-last-byte",
    ),
    pytest.param(SMALL_SH[:-2], "AV1 sequence header truncated at bit 64 (needs 1 more)", id="cut"),
    pytest.param(b"", "AV1 sequence header truncated at bit 0 (needs 3 more)", id="empty"),
    pytest.param(
        SMALL_SH + b"\x01", "AV1 sequence header has non-zero bits after its end", id="junk"
    ),
    pytest.param(
        SMALL_SH[:-1] + b"\x00", "AV1 sequence header has no trailing one bit", id="zero-trailing"
    ),
]


@pytest.mark.parametrize(("payload", "message"), MALFORMED_SEQUENCES)
def test_malformed_sequence_header(payload: bytes, message: str) -> None:
    with pytest.raises(DepacketizeError) as raised:
        parse_sequence_header(payload)
    assert str(raised.value) == message


def test_sequence_header_with_zero_padding_after_trailing_bits() -> None:
    # trailing_bits() fills the OBU with zero bits; whole zero bytes are still trailing bits.
    assert parse_sequence_header(SMALL_SH + b"\x00\x00").max_frame_width == 160


@pytest.mark.parametrize("cut", range(len(SMALL_SH)))
def test_every_truncated_real_sequence_header_is_refused(cut: int) -> None:
    with pytest.raises(DepacketizeError):
        parse_sequence_header(SMALL_SH[:cut])


# -- AV1 spec 5.9.2: the start of real and invented frame headers -------------------------------

# name -> (key frame OBU_FRAME payload prefix, next frame's prefix), same files as above.
REAL_FRAME_HEADERS: dict[str, tuple[str, str]] = {
    "libaom": ("100080200000800000dd4ac2ea27bffc", "30038080fdf83a520092492428204a00"),
    "libaom-10bit": ("100080e00000800000dd4ad10d50ffff", "30038080fdf83a5280f3cf3c28204a00"),
    "libsvtav1": ("1400a24024dd6d5bcc8da0ae532089a3", "320104049249152300000040000000b4"),
    "libsvtav1-10bit": ("1400a25824dd6d5bcb27748a02036ae8", "320104049249152300000040000000b4"),
    "libaom-444": ("100080200000800000dd2ea09fffb22a", "30038080fdf83a520092492428204a00"),
    "libaom-422-10bit": ("100080e00000800000dd47b66c3fffeb", "30038080fdf83a5280f3cf3c28204a00"),
    "libaom-gray": ("1000802000020000dd3601f7fff2163f", "30038080fdf83a5202490a08a000dad3"),
    "libaom-full-range-bt709": (
        "100080200000800000dd4ac2ea27bffc",
        "30038080fdf83a520092492428204a00",
    ),
    "libaom-error-resilient": (
        "1252500100400001000000dd4ac2ea27",
        "39292c04080000000000000000002000",
    ),
    "libaom-timing-model": ("100000800401000004000000dd4ac2ea", "300400e8020407efc1d2900492492141"),
    "libaom-still-picture": ("448000514724501050dda82aa7527539", ""),
    "libaom-320x240": ("10008400020820880000dd4ac9ea66ca", "30038080fdf83a400059659628104a00"),
}


def _real_sequence(name: str) -> SequenceHeader:
    (obu,) = split_obus(bytes.fromhex(REAL_SEQUENCE_HEADERS[name][0]))
    return parse_sequence_header(obu.payload)


@pytest.mark.parametrize("name", REAL_FRAME_HEADERS)
def test_real_key_frame_header(name: str) -> None:
    sequence = _real_sequence(name)
    header = parse_frame_header(bytes.fromhex(REAL_FRAME_HEADERS[name][0]), sequence)
    size = (sequence.max_frame_width, sequence.max_frame_height)
    assert header == FrameHeader(False, KEY_FRAME, True, *size)
    assert header.is_shown_key_frame


@pytest.mark.parametrize("name", [n for n, (_, inter) in REAL_FRAME_HEADERS.items() if inter])
def test_real_inter_frame_header(name: str) -> None:
    header = parse_frame_header(bytes.fromhex(REAL_FRAME_HEADERS[name][1]), _real_sequence(name))
    assert header == FrameHeader(False, 1, True)
    assert not header.is_shown_key_frame


def _key_header(override: tuple[int, int] | None, allow_sct: int = 0) -> bytes:
    """A shown key frame header for libaom's 160x120 sequence header (order hint 7 bits,
    screen content tools and integer mv decided per frame, no frame ids, no decoder model)."""
    fields = [(0, 1), (KEY_FRAME, 2), (1, 1), (0, 1), (allow_sct, 1)]
    if allow_sct:
        fields.append((1, 1))  # force_integer_mv
    fields += [(override is not None, 1), (0x55, 7)]
    if override:
        fields += [(override[0] - 1, 8), (override[1] - 1, 7)]
    return _pack(fields, trailing=False) + b"\xff"


FRAME_HEADERS = [
    pytest.param(_key_header(None), FrameHeader(False, 0, True, 160, 120), id="key-max-size"),
    pytest.param(
        _key_header((100, 80)), FrameHeader(False, 0, True, 100, 80), id="key-size-override"
    ),
    pytest.param(
        _key_header((256, 128), allow_sct=1),
        FrameHeader(False, 0, True, 256, 128),
        id="key-screen-content-integer-mv",
    ),
    pytest.param(_pack([(1, 1), (3, 3)]), FrameHeader(True, None, True), id="show-existing"),
    pytest.param(_pack([(0, 1), (0, 2), (0, 1)]), FrameHeader(False, 0, False), id="hidden-key"),
    pytest.param(_pack([(0, 1), (1, 2), (1, 1)]), FrameHeader(False, 1, True), id="inter"),
    pytest.param(_pack([(0, 1), (2, 2), (1, 1)]), FrameHeader(False, 2, True), id="intra-only"),
    pytest.param(_pack([(0, 1), (3, 2), (0, 1)]), FrameHeader(False, 3, False), id="switch"),
]


@pytest.mark.parametrize(("payload", "expected"), FRAME_HEADERS)
def test_invented_frame_header(payload: bytes, expected: FrameHeader) -> None:
    assert parse_frame_header(payload, parse_sequence_header(SMALL_SH)) == expected


def _rich_key_header(in_layer: bool) -> bytes:
    """A shown key frame for RICH_SEQUENCE: no temporal_point_info (equal_picture_interval),
    screen content tools forced on, integer mv forced (not coded), a 10-bit frame id, a 5-bit
    buffer_removal_time for operating point 0 only when the frame is in its layers."""
    fields = [(0, 1), (0, 2), (1, 1), (1, 1), (0x3FF, 10), (1, 1), (7, 5), (1, 1)]
    if in_layer:
        fields.append((0b10101, 5))
    fields += [(639, 11), (359, 11)]
    return _pack(fields, trailing=False)


@pytest.mark.parametrize(
    ("temporal_id", "spatial_id", "in_layer"),
    [
        pytest.param(0, 0, True, id="T0S0"),
        pytest.param(1, 0, True, id="T1S0"),
        pytest.param(2, 0, False, id="T2-not-in-op0"),
        pytest.param(0, 1, False, id="S1-not-in-op0"),
    ],
)
def test_invented_frame_header_with_decoder_model(
    temporal_id: int, spatial_id: int, in_layer: bool
) -> None:
    sequence = parse_sequence_header(_pack(RICH_SEQUENCE))
    header = parse_frame_header(_rich_key_header(in_layer), sequence, temporal_id, spatial_id)
    assert header == FrameHeader(False, KEY_FRAME, True, 640, 360)


def test_reduced_still_picture_frame_header_is_a_key_frame() -> None:
    # reduced_still_picture_header: no show_existing_frame, frame_type or show_frame bits.
    sequence = _real_sequence("libaom-still-picture")
    assert parse_frame_header(b"\x00", sequence) == FrameHeader(False, 0, True, 160, 120)


MALFORMED_FRAME_HEADERS = [
    pytest.param(b"", "AV1 frame header truncated at bit 0 (needs 1 more)", id="empty"),
    pytest.param(_key_header(None)[:1], "AV1 frame header truncated at bit 7", id="cut"),
    pytest.param(
        _key_header((100, 80))[:2], "AV1 frame header truncated at bit 14 (needs 8 more)",
        id="cut-in-size",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("payload", "message"), MALFORMED_FRAME_HEADERS)
def test_malformed_frame_header(payload: bytes, message: str) -> None:
    with pytest.raises(DepacketizeError) as raised:
        parse_frame_header(payload, parse_sequence_header(SMALL_SH))
    assert str(raised.value) == message


# -- build(): temporal units from real libaom output ----------------------------------------------


def test_real_key_frame_in_one_packet() -> None:
    tu = SMALL_TUS[0]
    obus = low_overhead_obus(tu)
    assert [obu.type for obu in obus] == [2, 1, 6]
    depacketizer = _depacketizer()
    # Spec style: TD removed, OBUs without obu_size, W=2, N=1.
    sh, frame = obus[1].without_size(), obus[2].without_size()
    payload = b"\x28" + encode_leb128(len(sh)) + sh + frame
    assert depacketizer.starts_frame(_view(payload))
    result = depacketizer.build([_view(payload)], 1234)
    assert result.data == _without_td(tu)
    assert result.keyframe is True
    assert (result.timestamp, result.duration, result.width, result.height) == (1234, 0, 160, 120)


def test_real_key_frame_sets_the_config() -> None:
    depacketizer = _depacketizer()
    assert depacketizer.config is None
    depacketizer.build(_views(packetize(SMALL_TUS[0], 1200)), 0)
    assert depacketizer.config == CodecConfig(
        codec="AV1",
        kind="video",
        clock_rate=CLOCK_RATE,
        width=160,
        height=120,
        profile=0,
        level=0,
        bit_depth=8,
        chroma_subsampling=0,
        full_range=False,
        record=bytes.fromhex("81000c00") + SMALL_SH_OBU,
    )


def test_real_inter_frames() -> None:
    depacketizer = _depacketizer()
    depacketizer.build(_views(packetize(SMALL_TUS[0], 1200)), 0)
    config = depacketizer.config
    for index in (1, 2):
        frame = depacketizer.build(_views(packetize(SMALL_TUS[index], 1200)), index * 3000)
        assert frame.data == _without_td(SMALL_TUS[index])
        assert frame.keyframe is False
        assert (frame.width, frame.height) == (0, 0)
    assert depacketizer.config is config


def test_inter_frame_before_any_sequence_header_passes_as_non_key() -> None:
    # The stream drops it anyway (it waits for a keyframe); nothing here can be checked.
    depacketizer = _depacketizer()
    frame = depacketizer.build(_views(packetize(SMALL_TUS[1], 1200)), 0)
    assert frame.keyframe is False
    assert depacketizer.config is None


@pytest.mark.parametrize("mtu", [1200, 500, 100, 40, 12])
@pytest.mark.parametrize("index", [0, 1, 2])
def test_spec_packetizer_round_trip(mtu: int, index: int) -> None:
    depacketizer = _depacketizer()
    depacketizer.build(_views(packetize(SMALL_TUS[0], 1200)), 0)
    payloads = packetize(SMALL_TUS[index], mtu)
    assert all(len(p) <= mtu for p in payloads)
    assert depacketizer.starts_frame(_view(payloads[0]))
    frame = depacketizer.build(_views(payloads), 0)
    assert frame.data == _without_td(SMALL_TUS[index])
    assert frame.keyframe is (index == 0)


@pytest.mark.parametrize("mtu", [1200, 500, 130, 100, 40, 12])
@pytest.mark.parametrize("index", [0, 1, 2])
def test_pion_style_round_trip(mtu: int, index: int) -> None:
    # W=0, N never set, obu_size kept, the TD kept, the whole TU one fragmented element.
    depacketizer = _depacketizer()
    depacketizer.build(_views(pion_packetize(SMALL_TUS[0], 1200)), 0)
    payloads = pion_packetize(SMALL_TUS[index], mtu)
    assert all(p[0] & 0x38 == 0 for p in payloads)
    frame = depacketizer.build(_views(payloads), 0)
    assert frame.data == _without_td(SMALL_TUS[index])
    assert frame.keyframe is (index == 0)
    assert depacketizer.config is not None and depacketizer.config.record[4:] == SMALL_SH_OBU


def test_pion_127_byte_length_quirk() -> None:
    # pion 1.7 writes a length of 127 as 00 7f: read as an empty element and a 127-byte one.
    tu = SMALL_TUS[1]
    payloads = pion_packetize(tu, len(tu) - 127 + 3)
    assert len(payloads) == 2 and payloads[1][:3] == b"\x80\x00\x7f"
    frame = _depacketizer().build(_views(payloads), 0)
    assert frame.data == _without_td(tu)
    single = b"\x00\x00\x7f" + tu[:127]
    _, elements = packet_elements(single)
    assert [len(e) for e in elements] == [0, 127]


def test_n_bit_is_only_a_hint() -> None:
    depacketizer = _depacketizer()
    depacketizer.build(_views(packetize(SMALL_TUS[0], 1200)), 0)
    # N=1 on an inter frame: still not a keyframe.
    inter = packetize(SMALL_TUS[1], 1200, new_sequence=True)
    assert inter[0][0] & 0x08
    assert depacketizer.build(_views(inter), 1).keyframe is False
    # N=0 on the key frame (pion): still a keyframe.
    key = packetize(SMALL_TUS[0], 1200, new_sequence=False)
    assert not key[0][0] & 0x08
    assert depacketizer.build(_views(key), 2).keyframe is True


# -- build(): invented temporal units (real sequence header, invented frames) --------------------

KEY = _key_header(None)  # shown key frame header, 160x120
INTER = b"\x30"  # show_existing_frame 0, INTER_FRAME, show_frame 1
SH = _obu(1, SMALL_SH)
KEY_FH = _obu(3, KEY)
TG = _obu(4, b"\xaa\xbb\xcc")


def _build(*payloads: bytes, depacketizer: Av1Depacketizer | None = None) -> Frame:
    return (depacketizer or _depacketizer()).build(_views(payloads), 0)


def _sized(*obus: bytes) -> bytes:
    """The OBUs rewritten with obu_size, as build() outputs them."""
    return b"".join(obu.to_bytes() for element in obus for obu in split_obus(element))


def test_every_w_value_gives_the_same_frame() -> None:
    expected = _sized(SH, KEY_FH, TG)
    lengths = b"".join(encode_leb128(len(o)) + o for o in (SH, KEY_FH, TG))
    assert _build(b"\x00" + lengths).data == expected
    assert _build(b"\x30" + lengths[: -len(TG) - 1] + TG).data == expected
    two = encode_leb128(len(SH)) + SH + KEY_FH
    assert _build(b"\x20" + two, b"\x10" + TG).data == expected
    assert _build(b"\x10" + SH, b"\x10" + KEY_FH, b"\x10" + TG).data == expected


def test_four_elements_need_w0() -> None:
    meta = _obu(5, b"\x01\x02")
    elements = (SH, meta, KEY_FH, TG)
    frame = _build(b"\x00" + b"".join(encode_leb128(len(o)) + o for o in elements))
    assert frame.data == _sized(*elements)
    assert frame.keyframe


@pytest.mark.parametrize(
    "cuts",
    [
        pytest.param((1,), id="after-header-byte"),
        pytest.param((3,), id="mid-payload"),
        pytest.param((1, 2), id="three-packets"),
        pytest.param((2, 3, 4), id="four-packets"),
    ],
)
def test_obu_fragmented_across_packets(cuts: tuple[int, ...]) -> None:
    frame_obu = _obu(6, KEY + b"\x01\x02\x03")
    pieces = [frame_obu[a:b] for a, b in zip((0, *cuts), (*cuts, None), strict=True)]
    payloads = []
    for index, piece in enumerate(pieces):
        z = 0x80 if index else 0
        y = 0x40 if index < len(pieces) - 1 else 0
        if index == 0:
            payloads.append(bytes([y | 0x20]) + encode_leb128(len(SH)) + SH + piece)
        else:
            payloads.append(bytes([z | y | 0x10]) + piece)
    depacketizer = _depacketizer()
    assert depacketizer.starts_frame(_view(payloads[0]))
    assert not any(depacketizer.starts_frame(_view(p)) for p in payloads[1:])
    frame = depacketizer.build(_views(payloads), 0)
    assert frame.data == _sized(SH, frame_obu)
    assert frame.keyframe


def test_fragment_end_followed_by_more_obus_in_the_same_packet() -> None:
    frame_obu = _obu(6, KEY + b"\x01\x02\x03")
    first = b"\x60" + encode_leb128(len(SH)) + SH + frame_obu[:2]  # Y=1, W=2
    second = b"\xa0" + encode_leb128(len(frame_obu) - 2) + frame_obu[2:] + TG  # Z=1, W=2
    assert _build(first, second).data == _sized(SH, frame_obu, TG)


@pytest.mark.parametrize(
    "payloads",
    [
        pytest.param(
            (b"\x50" + SH[:4], b"\xc0\x00", b"\xa0" + encode_leb128(len(SH) - 4) + SH[4:] + KEY_FH),
            id="empty-middle-fragment",
        ),
        pytest.param(
            (b"\x00\x00" + encode_leb128(len(SH)) + SH + b"\x00", b"\x10" + KEY_FH),
            id="empty-first-and-last-elements",
        ),
        pytest.param((b"\x60\x0b" + SH, b"\x90" + KEY_FH), id="empty-fragment-start"),
        pytest.param((b"\x10" + SH, b"\x00\x00\x00" + encode_leb128(len(KEY_FH)) + KEY_FH),
                     id="two-empty-elements"),
    ],
)  # fmt: skip
def test_zero_length_elements_carry_nothing(payloads: tuple[bytes, ...]) -> None:
    frame = _build(*payloads)
    assert frame.data == _sized(SH, KEY_FH)
    assert frame.keyframe


INTER_FH = _obu(3, INTER)


@pytest.mark.parametrize(
    ("payloads", "message"),
    [
        pytest.param(
            [b"\x90" + KEY_FH],
            "AV1 packet 0 continues an OBU fragment whose start was lost (Z=1)",
            id="lost-start-Z-at-frame-start",
        ),
        pytest.param(
            [b"\x10" + SH, b"\x90" + KEY_FH],
            "AV1 packet 1 continues an OBU fragment whose start was lost (Z=1)",
            id="Z-without-Y-before",
        ),
        pytest.param(
            [b"\x50" + SH[:2], b"\x10" + KEY_FH],
            "AV1 packet 1 does not continue the OBU fragment of the packet before it "
            "(Z=0 after Y=1)",
            id="Y-then-Z0",
        ),
        pytest.param(
            [b"\x10" + SH, b"\x50" + KEY_FH[:2]],
            "AV1 temporal unit ends inside an OBU fragment (Y=1)",
            id="trailing-Y",
        ),
        pytest.param(
            [b"\x10" + SH, b"\x50" + KEY_FH[:1], b"\xd0" + KEY_FH[1:2]],
            "AV1 temporal unit ends inside an OBU fragment (Y=1)",
            id="trailing-Y-middle-fragment",
        ),
        pytest.param(
            [b"\x00\x05" + SH[:3]],
            "AV1 OBU element of 5 bytes overruns the payload (3 bytes left)",
            id="element-overrun",
        ),
        pytest.param(
            [b"\x10" + SH, b"\x00\xff"],
            "AV1 OBU element length leb128 is truncated",
            id="length-cut-in-second-packet",
        ),
        pytest.param(
            [b"\x10\x0a\x20" + SMALL_SH],
            "AV1 obu_size 32 overruns its element (10 bytes left)",
            id="obu-size-overruns-element",
        ),
        pytest.param(
            [b"\x50" + SH[:3], b"\xa0" + encode_leb128(len(SH) - 2) + SH[3:] + b"\x01" + KEY_FH],
            "AV1 sequence header has non-zero bits after its end",
            id="reassembled-sequence-header-with-junk",
        ),
        pytest.param(
            [b"\x10" + _obu(2, b""), b"\x10" + _obu(15, b"\x00")],
            "AV1 temporal unit has no frame or frame header OBU",
            id="only-dropped-obus",
        ),
        pytest.param(
            [b"\x10" + SH], "AV1 temporal unit has no frame or frame header OBU", id="only-SH"
        ),
        pytest.param(
            [b"\x10" + KEY_FH],
            "AV1 key frame arrived before any sequence header",
            id="key-frame-no-sequence-header",
        ),
        pytest.param(
            [b"\x10" + _obu(1, SMALL_SH[:-3]), b"\x10" + KEY_FH],
            "AV1 sequence header truncated at bit 56",
            id="truncated-sequence-header",
        ),
        pytest.param(
            [b"\x10" + SH, b"\x10" + _obu(3, KEY[:1])],
            "AV1 frame header truncated at bit 7",
            id="truncated-key-frame-header",
        ),
        pytest.param(
            [b"\x10" + SH, b"\x10" + b"\xb0"],
            "AV1 OBU header 0xb0 has the forbidden bit set",
            id="forbidden-bit",
        ),
        pytest.param([], "AV1 temporal unit has no frame or frame header OBU", id="no-payloads"),
    ],
)
def test_malformed_temporal_unit(payloads: list[bytes], message: str) -> None:
    depacketizer = _depacketizer()
    with pytest.raises(DepacketizeError) as raised:
        depacketizer.build(_views(payloads), 0)
    assert str(raised.value) == message
    assert depacketizer.config is None


@pytest.mark.parametrize(
    ("kind", "kept"),
    [
        pytest.param(2, False, id="temporal-delimiter"),
        pytest.param(8, False, id="tile-list"),
        pytest.param(15, False, id="padding"),
        pytest.param(5, True, id="metadata"),
        pytest.param(7, True, id="redundant-frame-header"),
        pytest.param(0, True, id="reserved-0"),
        pytest.param(9, True, id="reserved-9"),
        pytest.param(4, True, id="tile-group"),
    ],
)
def test_obu_types_dropped_or_kept(kind: int, kept: bool) -> None:
    other = _obu(kind, b"\x11\x22")
    frame = _build(
        b"\x30" + encode_leb128(len(SH)) + SH + encode_leb128(len(other)) + other + KEY_FH
    )
    assert frame.data == (_sized(SH, other, KEY_FH) if kept else _sized(SH, KEY_FH))


def test_extension_headers_are_kept() -> None:
    # temporal_id 1, spatial_id 0 on the frame header and tile group.
    fh = _obu(3, KEY, extension=0x20)
    tg = _obu(4, b"\x99", extension=0x20)
    frame = _build(b"\x30" + encode_leb128(len(SH)) + SH + encode_leb128(len(fh)) + fh + tg)
    # obu_has_size_field set in 0x18|0x04 -> 0x1e and 0x20|0x04 -> 0x26, extension byte kept.
    expected = SMALL_SH_OBU + bytes([0x1E, 0x20, len(KEY)]) + KEY + bytes([0x26, 0x20, 1, 0x99])
    assert frame.data == expected
    assert frame.keyframe


def test_obus_with_size_fields_inside_w_elements() -> None:
    # pion-like OBUs with obu_size, but packed spec-style in W=2 elements.
    sized_sh = _obu(1, SMALL_SH, size=True)
    sized_fh = _obu(3, KEY, size=True)
    frame = _build(b"\x20" + encode_leb128(len(sized_sh)) + sized_sh + sized_fh)
    assert frame.data == sized_sh + sized_fh
    assert frame.keyframe


def test_keyframe_needs_the_first_frame_header_to_be_a_shown_key_frame() -> None:
    hidden_key = _obu(3, _pack([(0, 1), (0, 2), (0, 1)]) + b"\x00")
    for frames in ((INTER_FH, KEY_FH), (hidden_key, KEY_FH), (_obu(3, b"\x80"), KEY_FH)):
        payload = b"\x00" + b"".join(encode_leb128(len(o)) + o for o in (SH, *frames))
        frame = _build(payload)
        assert frame.keyframe is False, frames
        assert (frame.width, frame.height) == (0, 0)


def test_key_frame_with_size_override_reports_its_size() -> None:
    depacketizer = _depacketizer()
    frame = _build(b"\x20\x0b" + SH + _obu(6, _key_header((100, 80))), depacketizer=depacketizer)
    assert frame.keyframe and (frame.width, frame.height) == (100, 80)
    # The container gets the sequence maximum, as FFmpeg and libaom write it.
    assert depacketizer.config is not None
    assert (depacketizer.config.width, depacketizer.config.height) == (160, 120)


def test_key_frame_without_a_sequence_header_gets_the_known_one() -> None:
    depacketizer = _depacketizer()
    _build(b"\x20\x0b" + SH + KEY_FH, depacketizer=depacketizer)
    config = depacketizer.config
    frame = _build(b"\x10" + KEY_FH, depacketizer=depacketizer)
    assert frame.keyframe
    assert frame.data == SMALL_SH_OBU + _sized(KEY_FH)
    assert depacketizer.config is config


def test_reduced_still_picture_temporal_unit() -> None:
    sh = bytes.fromhex(REAL_SEQUENCE_HEADERS["libaom-still-picture"][0])
    frame_obu = _obu(6, b"\x00\x12\x34")
    depacketizer = _depacketizer()
    frame = _build(b"\x20" + encode_leb128(len(sh)) + sh + frame_obu, depacketizer=depacketizer)
    assert frame.keyframe and (frame.width, frame.height) == (160, 120)
    assert depacketizer.config is not None and depacketizer.config.record[4:] == sh


def test_config_kept_while_the_sequence_header_repeats_and_replaced_when_it_changes() -> None:
    depacketizer = _depacketizer()
    _build(b"\x20\x0b" + SH + KEY_FH, depacketizer=depacketizer)
    first = depacketizer.config
    _build(b"\x20\x0b" + SH + KEY_FH, depacketizer=depacketizer)
    assert depacketizer.config is first
    # A sequence header repeated on an inter frame changes nothing.
    _build(b"\x20\x0b" + SH + INTER_FH, depacketizer=depacketizer)
    assert depacketizer.config is first
    # A new sequence (libaom 320x240) at a key frame replaces the config.
    big_sh_obu = bytes.fromhex(REAL_SEQUENCE_HEADERS["libaom-320x240"][0])
    (big,) = split_obus(big_sh_obu)
    big_key = _obu(3, bytes.fromhex(REAL_FRAME_HEADERS["libaom-320x240"][0]))
    big_sh = _obu(1, bytes(big.payload))
    frame = _build(
        b"\x20" + encode_leb128(len(big_sh)) + big_sh + big_key, depacketizer=depacketizer
    )
    assert frame.keyframe and (frame.width, frame.height) == (320, 240)
    config = depacketizer.config
    assert config is not first and config is not None
    assert (config.width, config.height) == (320, 240)
    assert config.record == bytes.fromhex("81000c00") + big_sh_obu


@pytest.mark.parametrize(
    ("name", "profile", "depth", "subsampling", "full"),
    [
        pytest.param("libaom-10bit", 0, 10, 0, False, id="10bit"),
        pytest.param("libaom-444", 1, 8, 3, False, id="444"),
        pytest.param("libaom-422-10bit", 2, 10, 2, False, id="422"),
        pytest.param("libaom-full-range-bt709", 0, 8, 0, True, id="full-range"),
    ],
)
def test_config_fields_from_real_sequence_headers(
    name: str, profile: int, depth: int, subsampling: int, full: bool
) -> None:
    sh_obu = bytes.fromhex(REAL_SEQUENCE_HEADERS[name][0])
    key = _obu(6, bytes.fromhex(REAL_FRAME_HEADERS[name][0]))
    depacketizer = _depacketizer()
    frame = _build(b"\x20" + encode_leb128(len(sh_obu)) + sh_obu + key, depacketizer=depacketizer)
    assert frame.keyframe
    config = depacketizer.config
    assert config is not None
    assert (config.profile, config.bit_depth, config.chroma_subsampling, config.full_range) == (
        profile,
        depth,
        subsampling,
        full,
    )
    assert config.record[4:] == sh_obu


def test_malformed_sequence_header_keeps_the_previous_state() -> None:
    depacketizer = _depacketizer()
    _build(b"\x20\x0b" + SH + KEY_FH, depacketizer=depacketizer)
    config = depacketizer.config
    with pytest.raises(DepacketizeError):
        _build(
            b"\x20\x0b" + _obu(1, bytes([0xE0]) + SMALL_SH[1:]) + KEY_FH, depacketizer=depacketizer
        )
    assert depacketizer.config is config
    assert _build(b"\x10" + KEY_FH, depacketizer=depacketizer).keyframe


# -- the test packetizer itself ---------------------------------------------------------------


def test_packetizer_follows_the_spec() -> None:
    payloads = packetize(SMALL_TUS[0], 1200)
    assert payloads[0][0] & 0x08 and not any(p[0] & 0x08 for p in payloads[1:])
    assert not payloads[0][0] & 0x80 and not payloads[-1][0] & 0x40
    for before, after in pairwise(payloads):
        assert bool(before[0] & 0x40) == bool(after[0] & 0x80)
    for payload in payloads:
        header, elements = packet_elements(payload)
        assert (header >> 4) & 3 == len(elements)
    # OBUs are sent without obu_size and without the temporal delimiter.
    header, elements = packet_elements(payloads[0])
    assert bytes(elements[0]) == bytes([SMALL_SH_OBU[0] & ~0x02]) + SMALL_SH
    assert all(p[0] & 0x30 for p in packetize(SMALL_TUS[1], 100))
    assert not packetize(SMALL_TUS[1], 1200)[0][0] & 0x08


def test_packetizer_uses_w0_for_more_than_three_obus() -> None:
    tu = b"".join(_obu(5, bytes([i]), size=True) for i in range(4)) + _obu(3, INTER, size=True)
    (payload,) = packetize(tu, 1200)
    assert payload[0] & 0x30 == 0
    assert _build(payload).data == tu


# -- fuzz: only DepacketizeError may escape ---------------------------------------------------

_SEED_PAYLOADS = [p for tu in SMALL_TUS[1:] for p in packetize(tu, 60)] + [
    p for tu in SMALL_TUS[1:] for p in pion_packetize(tu, 100)
]


def _expect_only_depacketize_error(function: Callable[[], object]) -> None:
    with contextlib.suppress(DepacketizeError):
        function()


def _mutate(data: bytes, flips: list[tuple[int, int]], cut: int | None) -> bytes:
    mutable = bytearray(data)
    for position, bit in flips:
        if mutable:
            mutable[position % len(mutable)] ^= 1 << bit
    return bytes(mutable[:cut] if cut is not None else mutable)


_flips = st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 7)), max_size=4)


@FUZZ
@given(st.binary(max_size=64))
@example(b"")
@example(b"\x88\x01")
def test_fuzz_starts_frame(payload: bytes) -> None:
    _expect_only_depacketize_error(lambda: _depacketizer().starts_frame(_view(payload)))


@FUZZ
@given(st.lists(st.binary(max_size=80), max_size=4))
def test_fuzz_build_arbitrary(payloads: list[bytes]) -> None:
    depacketizer = _depacketizer()
    depacketizer.build(_views(packetize(SMALL_TUS[0], 1200)), 0)
    _expect_only_depacketize_error(lambda: depacketizer.build(_views(payloads), 0))
    _expect_only_depacketize_error(lambda: _depacketizer().build(_views(payloads), 0))


@FUZZ
@given(st.integers(0, len(SMALL_TUS) - 1), st.integers(12, 400), st.booleans(), _flips,
       st.one_of(st.none(), st.integers(0, 400)), st.integers(0, 20))  # fmt: skip
def test_fuzz_build_mutated(
    index: int, mtu: int, pion: bool, flips: list[tuple[int, int]], cut: int | None, which: int
) -> None:
    payloads = (pion_packetize if pion else packetize)(SMALL_TUS[index], mtu)
    target = which % len(payloads)
    payloads[target] = _mutate(payloads[target], flips, cut)
    depacketizer = _depacketizer()
    try:
        frame = depacketizer.build(_views(payloads), 0)
    except DepacketizeError:
        return
    # Whatever comes out is in Low overhead format: OBUs with obu_size, none of the dropped.
    assert all(obu.header & 0x02 for obu in split_obus(frame.data))
    assert not {obu.type for obu in split_obus(frame.data)} & {2, 8, 15}


@FUZZ
@given(st.binary(max_size=64))
@example(SMALL_SH)
@example(_pack(RICH_SEQUENCE))
def test_fuzz_sequence_header_arbitrary(payload: bytes) -> None:
    _expect_only_depacketize_error(lambda: parse_sequence_header(payload))


_REAL_SH_PAYLOADS = [bytes(split_obus(bytes.fromhex(h))[0].payload) for h, _, _ in
                     REAL_SEQUENCE_HEADERS.values()] + [_pack(RICH_SEQUENCE)]  # fmt: skip


@FUZZ
@given(st.sampled_from(_REAL_SH_PAYLOADS), _flips, st.one_of(st.none(), st.integers(0, 40)))
def test_fuzz_sequence_header_mutated(
    payload: bytes, flips: list[tuple[int, int]], cut: int | None
) -> None:
    _expect_only_depacketize_error(lambda: parse_sequence_header(_mutate(payload, flips, cut)))


_SEQUENCES = [parse_sequence_header(p) for p in _REAL_SH_PAYLOADS]
_FRAME_PREFIXES = [bytes.fromhex(h) for pair in REAL_FRAME_HEADERS.values() for h in pair if h]


@FUZZ
@given(st.sampled_from(_SEQUENCES), st.one_of(st.binary(max_size=40), st.sampled_from(
    _FRAME_PREFIXES)), _flips, st.integers(0, 7), st.integers(0, 3))  # fmt: skip
def test_fuzz_frame_header(
    sequence: SequenceHeader,
    payload: bytes,
    flips: list[tuple[int, int]],
    temporal_id: int,
    spatial_id: int,
) -> None:
    mutated = _mutate(payload, flips, None)
    _expect_only_depacketize_error(
        lambda: parse_frame_header(mutated, sequence, temporal_id, spatial_id)
    )


@FUZZ
@given(st.binary(max_size=64))
def test_fuzz_elements_and_obus(data: bytes) -> None:
    _expect_only_depacketize_error(lambda: packet_elements(data))
    _expect_only_depacketize_error(lambda: split_obus(data))
    _expect_only_depacketize_error(lambda: read_leb128(data, 0, len(data), "x"))


@FUZZ
@given(st.sampled_from(_SEED_PAYLOADS), _flips, st.one_of(st.none(), st.integers(0, 120)))
def test_fuzz_starts_frame_mutated(
    payload: bytes, flips: list[tuple[int, int]], cut: int | None
) -> None:
    _expect_only_depacketize_error(
        lambda: _depacketizer().starts_frame(_view(_mutate(payload, flips, cut)))
    )
