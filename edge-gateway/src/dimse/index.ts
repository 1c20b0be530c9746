/** The gateway's DIMSE layer: PS3.8 upper layer + PS3.7 messages, acceptor and requestor. */
export { createDimseServer, type DimseServer, type DimseServerOptions } from './server';
export { connectDimse, type ConnectDimseOptions, type ProposedContext } from './requestor';
export { DimseError, type DimseErrorCode } from './association';
export { CommandField, Status, Priority, NO_DATA_SET, isPending, type DimseCommand } from './command';
export { decodeDimseDataset, encodeDimseDataset, DatasetError } from './dataset';
export {
  SopClass,
  STORAGE_COMMITMENT_PUSH_MODEL_INSTANCE,
  isStorageSopClass,
  isKnownStorageTransferSyntax,
  IMPLICIT_VR_LE,
  EXPLICIT_VR_LE,
  COMMAND_TRANSFER_SYNTAXES,
} from './sop-classes';
export { GATEWAY_IMPLEMENTATION_CLASS_UID, GATEWAY_IMPLEMENTATION_VERSION_NAME } from './negotiate';
export * from './types';
