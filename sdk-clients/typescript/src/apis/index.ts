/* tslint:disable */
/* eslint-disable */
export * from './AuditApi';
export * from './RegistriesApi';
export * from './UpstreamProxiesApi';
