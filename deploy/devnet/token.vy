# pragma version ~=0.4.3
"""
@title USDC-like EIP-3009 test token for the x402-nginx devnet
@notice 6 decimals; EIP-712 domain name and version are set at deployment ("USDC", "2" on
        Base Sepolia). Revert strings are USDC's (FiatTokenV2), because facilitators map them to
        x402 error codes. `mint` exists for tests only.
"""

event Transfer:
    sender: indexed(address)
    receiver: indexed(address)
    value: uint256

event Approval:
    owner: indexed(address)
    spender: indexed(address)
    value: uint256

event AuthorizationUsed:
    authorizer: indexed(address)
    nonce: indexed(bytes32)

event AuthorizationCanceled:
    authorizer: indexed(address)
    nonce: indexed(bytes32)

name: public(String[64])
symbol: public(String[32])
version: public(String[16])
decimals: public(uint8)
totalSupply: public(uint256)
balanceOf: public(HashMap[address, uint256])
allowance: public(HashMap[address, HashMap[address, uint256]])
owner: public(address)
DOMAIN_SEPARATOR: public(bytes32)
authorizationState: public(HashMap[address, HashMap[bytes32, bool]])

EIP712_DOMAIN_TYPEHASH: constant(bytes32) = keccak256(
    "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)")
TRANSFER_WITH_AUTHORIZATION_TYPEHASH: public(constant(bytes32)) = keccak256(
    "TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)")
RECEIVE_WITH_AUTHORIZATION_TYPEHASH: public(constant(bytes32)) = keccak256(
    "ReceiveWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)")
CANCEL_AUTHORIZATION_TYPEHASH: public(constant(bytes32)) = keccak256(
    "CancelAuthorization(address authorizer,bytes32 nonce)")
SECP256K1N_HALF: constant(uint256) = 57896044618658097711785492504343953926418782139537452191302581570759080747168


@deploy
def __init__(name_: String[64], version_: String[16]):
    self.name = name_
    self.symbol = "USDC"
    self.version = version_
    self.decimals = 6
    self.owner = msg.sender
    self.DOMAIN_SEPARATOR = keccak256(abi_encode(
        EIP712_DOMAIN_TYPEHASH, keccak256(name_), keccak256(version_), chain.id, self))


@internal
def _transfer(sender: address, receiver: address, amount: uint256):
    assert receiver != empty(address), "ERC20: transfer to the zero address"
    assert self.balanceOf[sender] >= amount, "ERC20: transfer amount exceeds balance"
    self.balanceOf[sender] -= amount
    self.balanceOf[receiver] += amount
    log Transfer(sender=sender, receiver=receiver, value=amount)


@external
def transfer(to: address, amount: uint256) -> bool:
    self._transfer(msg.sender, to, amount)
    return True


@external
def approve(spender: address, amount: uint256) -> bool:
    self.allowance[msg.sender][spender] = amount
    log Approval(owner=msg.sender, spender=spender, value=amount)
    return True


@external
def transferFrom(sender: address, receiver: address, amount: uint256) -> bool:
    assert self.allowance[sender][msg.sender] >= amount, "ERC20: transfer amount exceeds allowance"
    self.allowance[sender][msg.sender] -= amount
    self._transfer(sender, receiver, amount)
    return True


@external
def mint(to: address, amount: uint256):
    assert msg.sender == self.owner, "FiatToken: caller is not a minter"
    self.totalSupply += amount
    self.balanceOf[to] += amount
    log Transfer(sender=empty(address), receiver=to, value=amount)


@internal
@view
def _recover(digest: bytes32, v: uint8, r: bytes32, s: bytes32) -> address:
    assert convert(s, uint256) <= SECP256K1N_HALF, "ECRecover: invalid signature 's' value"
    assert v == 27 or v == 28, "ECRecover: invalid signature 'v' value"
    signer: address = ecrecover(digest, v, r, s)
    assert signer != empty(address), "ECRecover: invalid signature"
    return signer


@internal
@view
def _digest(struct_hash: bytes32) -> bytes32:
    return keccak256(concat(b"\x19\x01", self.DOMAIN_SEPARATOR, struct_hash))


@internal
@view
def _require_valid(authorizer: address, nonce: bytes32, valid_after: uint256, valid_before: uint256):
    assert block.timestamp > valid_after, "FiatTokenV2: authorization is not yet valid"
    assert block.timestamp < valid_before, "FiatTokenV2: authorization is expired"
    assert not self.authorizationState[authorizer][nonce], "FiatTokenV2: authorization is used or canceled"


@internal
def _use(authorizer: address, nonce: bytes32):
    self.authorizationState[authorizer][nonce] = True
    log AuthorizationUsed(authorizer=authorizer, nonce=nonce)


@external
def transferWithAuthorization(
    sender: address, receiver: address, amount: uint256, valid_after: uint256, valid_before: uint256,
    nonce: bytes32, v: uint8, r: bytes32, s: bytes32
):
    self._require_valid(sender, nonce, valid_after, valid_before)
    struct_hash: bytes32 = keccak256(abi_encode(
        TRANSFER_WITH_AUTHORIZATION_TYPEHASH, sender, receiver, amount, valid_after, valid_before, nonce))
    assert self._recover(self._digest(struct_hash), v, r, s) == sender, "FiatTokenV2: invalid signature"
    self._use(sender, nonce)
    self._transfer(sender, receiver, amount)


@external
def receiveWithAuthorization(
    sender: address, receiver: address, amount: uint256, valid_after: uint256, valid_before: uint256,
    nonce: bytes32, v: uint8, r: bytes32, s: bytes32
):
    assert receiver == msg.sender, "FiatTokenV2: caller must be the payee"
    self._require_valid(sender, nonce, valid_after, valid_before)
    struct_hash: bytes32 = keccak256(abi_encode(
        RECEIVE_WITH_AUTHORIZATION_TYPEHASH, sender, receiver, amount, valid_after, valid_before, nonce))
    assert self._recover(self._digest(struct_hash), v, r, s) == sender, "FiatTokenV2: invalid signature"
    self._use(sender, nonce)
    self._transfer(sender, receiver, amount)


@external
def cancelAuthorization(authorizer: address, nonce: bytes32, v: uint8, r: bytes32, s: bytes32):
    assert not self.authorizationState[authorizer][nonce], "FiatTokenV2: authorization is used or canceled"
    struct_hash: bytes32 = keccak256(abi_encode(CANCEL_AUTHORIZATION_TYPEHASH, authorizer, nonce))
    assert self._recover(self._digest(struct_hash), v, r, s) == authorizer, "FiatTokenV2: invalid signature"
    self.authorizationState[authorizer][nonce] = True
    log AuthorizationCanceled(authorizer=authorizer, nonce=nonce)
