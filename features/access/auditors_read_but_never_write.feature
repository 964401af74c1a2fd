Feature: Auditors read everything but write nothing
  As an auditor for a donor's oversight office,
  I want to read any case and its full history, but never be able to change it,
  so that my review cannot alter the record I am reviewing.

  Background:
    Given the case worker has opened a case for the prisoner of war "Aram Testyan", a national of AM
    And the case worker has recorded that AZ captured the person at "Hadrut" on 2020-11-09, according to the ICRC

  Scenario: An auditor's attempt to record a fact is refused
    When the auditor records that AZ held the person at "Baku" on 2020-12-01, according to the ICRC
    Then the register answers 403 "forbidden"
    And nothing was recorded: the case is still at version 2

  Scenario: An auditor's attempt to open a case is refused
    When the auditor opens a case for the civilian internee "Narek Probyan", reported by the press, with these identity details:
      | field       | value |
      | nationality | AM    |
    Then the register answers 403 "forbidden"
    And the register still lists only 1 case

  Scenario: An auditor reads the case and its history
    When the auditor looks at the case
    Then the register answers 200
    And the case is at version 2
    And the person is held by AZ at "Hadrut"

    When the auditor reads the case's history
    Then the register answers 200
    And the history lists 2 events, oldest first
    And event 1 of the history is "opened", and it stands
    And event 2 of the history is "captured", and it stands
    And every event in the history names who recorded it: "worker-1" of "org-a"
